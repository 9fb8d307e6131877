/**
 * Constrained generation through a model: `generate` and `chat.send` / `chat.stream` with `jsonSchema` or
 * `grammar`, on synthetic Mixtrals with the real Mistral v1 vocabulary: a tiny one (1 layer, 64 wide) for the
 * 200 sampled JSON generations, and the default test model (2 layers, 256 wide, 4 experts top-2), whose
 * random weights give more varied choices, for the rest.
 */
import Ajv from "ajv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import type { ChatResult } from "../lib/chat.js";
import { grammarVocabulary } from "../lib/constrained.js";
import { Grammar, GrammarError } from "../lib/grammar/index.js";
import { Mixtral } from "../lib/model.js";
import type { GenerateOptions, GenerateResult, GeneratedToken, Session } from "../lib/session.js";
import { cachedTestModel } from "../lib/testing/test-model.js";
import { TokenType } from "../lib/tokenizer/tokenizer.js";
import { SCHEMA_MAX_TOKENS, STRUCTURED_SCHEMAS } from "./helpers/structured-schemas.js";

export const TINY_MIXTRAL = { nEmbd: 64, nLayers: 1, nHeads: 4, nFf: 128 } as const;
const PROMPT = "[INST] Reply with JSON only. [/INST]";
const SEEDS_PER_SCHEMA = 20;

/** A model with a session holding the evaluated prompt, which every generation continues from. */
interface Harness {
  model: Mixtral;
  session: Session;
  promptLength: number;
}

async function harness(options: Parameters<typeof cachedTestModel>[0]): Promise<Harness> {
  const model = await Mixtral.load(await cachedTestModel(options), { threads: 1 });
  const session = model.createSession({ contextSize: 1024 });
  await session.eval(model.tokenizer.encode(PROMPT));
  return { model, session, promptLength: session.position };
}

let tiny: Harness;
let main: Harness;
let model: Mixtral;
let session: Session;

beforeAll(async () => {
  tiny = await harness(TINY_MIXTRAL);
  main = await harness({});
  ({ model, session } = main);
});

afterAll(async () => {
  await tiny?.model.dispose();
  await main?.model.dispose();
});

/** Runs a generation to its end; returns the chunks and the result. */
async function drain<T>(steps: AsyncGenerator<GeneratedToken, GenerateResult<T>, void>): Promise<{ chunks: GeneratedToken[]; result: GenerateResult<T> }> {
  const chunks: GeneratedToken[] = [];
  for (let step = await steps.next(); ; step = await steps.next()) {
    if (step.done) return { chunks, result: step.value };
    chunks.push(step.value);
  }
}

/** Continues after the cached prompt, then rewinds to it, so every generation starts from the same state. */
async function fromPrompt<T>(run: () => AsyncGenerator<GeneratedToken, GenerateResult<T>, void>, on: Harness = main) {
  try {
    return await drain(run());
  } finally {
    on.session.rewind(on.session.position - on.promptLength);
  }
}

function thrown(read: () => unknown): unknown {
  try {
    read();
  } catch (error) {
    return error;
  }
  return undefined;
}

describe("71 structured: JSON schemas, 200 sampled generations through generate (tiny model)", () => {
  const ajv = new Ajv({ allErrors: true, strict: false });
  for (const [name, schema] of Object.entries(STRUCTURED_SCHEMAS)) {
    it(`${name}: ${SEEDS_PER_SCHEMA} generations at temperature 1 (seeds 1–${SEEDS_PER_SCHEMA}) end with eos, JSON.parse, validate with ajv and equal result.json`, async () => {
      const validate = ajv.compile(schema as object);
      const distinct = new Set<string>();
      for (let seed = 1; seed <= SEEDS_PER_SCHEMA; seed++) {
        const { chunks, result } = await fromPrompt(
          () => tiny.session.generate("", { jsonSchema: schema, temperature: 1, seed, maxTokens: SCHEMA_MAX_TOKENS }),
          tiny,
        );
        if (result.stopReason !== "eos") expect.fail(`seed ${seed} ended with ${result.stopReason}: ${result.text}`);
        const value: unknown = JSON.parse(result.text);
        if (!validate(value)) expect.fail(`seed ${seed}: ${result.text} fails the schema: ${ajv.errorsText(validate.errors)}`);
        expect(result.json).toEqual(value);
        expect(chunks.map((c) => c.text).join("")).toBe(result.text);
        distinct.add(result.text);
      }
      // Sampling at temperature 1 explores: the seeds do not all give one answer.
      expect(distinct.size).toBeGreaterThanOrEqual(5);
    });
  }
});

describe("71 structured: JSON schemas through chat", () => {
  const ajv = new Ajv({ allErrors: true, strict: false });

  it("chat.send with each of the 10 schemas (3 seeds each) replies with JSON that validates, json typed and equal to JSON.parse(text)", async () => {
    using chat = model.createChat({ systemPrompt: "Reply with JSON only." });
    for (const [name, schema] of Object.entries(STRUCTURED_SCHEMAS)) {
      const validate = ajv.compile(schema as object);
      for (let seed = 1; seed <= 3; seed++) {
        await chat.setHistory([{ role: "system", content: "Reply with JSON only." }]);
        const reply: ChatResult<unknown> = await chat.send(`Give me a ${name}.`, { jsonSchema: schema, temperature: 1, seed, maxTokens: SCHEMA_MAX_TOKENS });
        expect(reply.stopReason, `${name} seed ${seed}: ${reply.text}`).toBe("eos");
        const value: unknown = JSON.parse(reply.text);
        expect(validate(value), `${name} seed ${seed}: ${reply.text}`).toBe(true);
        expect(reply.json).toEqual(value);
        // The reply joins the history as its text, and the cache holds its tokens.
        expect(chat.history.at(-1)).toEqual({ role: "assistant", content: reply.text });
      }
    }
  });

  it("chat.stream with a schema streams the reply's text and resolves with its json", async () => {
    using chat = model.createChat();
    const stream = chat.stream("A point, please.", { jsonSchema: STRUCTURED_SCHEMAS.point, temperature: 1, seed: 4, maxTokens: SCHEMA_MAX_TOKENS });
    let streamed = "";
    for await (const { text } of stream) streamed += text;
    const result = await stream.result;
    expect(result.stopReason).toBe("eos");
    expect(streamed).toBe(result.text);
    expect(result.json).toEqual(JSON.parse(result.text));
    expect(Object.keys(result.json).sort()).toEqual(["x", "y"]);
  });

  it("the constraint lasts one turn: the next send without one samples freely again", async () => {
    using chat = model.createChat();
    await chat.send("JSON?", { jsonSchema: STRUCTURED_SCHEMAS.flags, temperature: 0, maxTokens: SCHEMA_MAX_TOKENS });
    const free = await chat.send("And now?", { temperature: 0, maxTokens: 12, logitBias: new Map([[2, -Infinity]]) });
    expect(free.json).toBeUndefined();
    expect("json" in free).toBe(false);
    expect(free.tokens).toHaveLength(12);
  });
});

/** The value of an arithmetic expression over + - * / and parentheses, or undefined when it is not one. */
function evaluate(text: string): number | undefined {
  let at = 0;
  const expression = (): number | undefined => {
    let value = term();
    while (value !== undefined && (text[at] === "+" || text[at] === "-")) {
      const op = text[at++];
      const right = term();
      if (right === undefined) return undefined;
      value = op === "+" ? value + right : value - right;
    }
    return value;
  };
  const term = (): number | undefined => {
    let value = factor();
    while (value !== undefined && (text[at] === "*" || text[at] === "/")) {
      const op = text[at++];
      const right = factor();
      if (right === undefined) return undefined;
      value = op === "*" ? value * right : value / right;
    }
    return value;
  };
  const factor = (): number | undefined => {
    if (text[at] === "(") {
      at++;
      const value = expression();
      if (value === undefined || text[at] !== ")") return undefined;
      at++;
      return value;
    }
    const digits = /^[0-9]+/.exec(text.slice(at));
    if (digits === null) return undefined;
    at += digits[0].length;
    return Number(digits[0]);
  };
  const value = expression();
  return at === text.length ? value : undefined;
}

describe("71 structured: GBNF grammars through the model", () => {
  const ARITHMETIC = 'root ::= expr\nexpr ::= term (("+" | "-") term)*\nterm ::= factor (("*" | "/") factor)*\nfactor ::= [0-9]{1,3} | "(" expr ")"';
  /** EOS is allowed only where the expression is complete; a bias makes the model take it there now and then. */
  const END_SOON = new Map([[2, 4]]);

  it("arithmetic: 20 generations are well-formed expressions with a value when they end with eos, and a valid prefix at maxTokens", async () => {
    const grammar = Grammar.fromGbnf(ARITHMETIC);
    let completed = 0;
    let nested = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const { result } = await fromPrompt(() => session.generate("", { grammar: ARITHMETIC, temperature: 1, seed, maxTokens: 48, logitBias: END_SOON }));
      expect(/^[0-9+\-*/()]+$/.test(result.text), result.text).toBe(true);
      if (result.stopReason === "eos") {
        completed++;
        expect(evaluate(result.text), result.text).toEqual(expect.any(Number));
        expect(grammar.matches(result.text)).toBe(true);
        if (result.text.includes("(")) nested++;
      } else {
        expect(result.stopReason).toBe("maxTokens");
        expect(grammar.isPrefix(result.text), result.text).toBe(true);
      }
      expect(result.json).toBeUndefined(); // a GBNF grammar has no JSON to parse
    }
    expect(completed).toBeGreaterThanOrEqual(5);
    expect(completed).toBeLessThan(20); // some run into maxTokens, and those are checked as prefixes
    expect(nested).toBeGreaterThanOrEqual(1);
  });

  it('yes/no in chat: root ::= "yes" | "no" gives exactly "yes" or "no" (the model may use its ▁yes token), ending with eos', async () => {
    using chat = model.createChat();
    const answers = new Set<string>();
    const firstPieces = new Set<string>();
    for (let seed = 1; seed <= 12; seed++) {
      await chat.reset();
      const reply = await chat.send("Is the sky blue? Answer yes or no.", { grammar: 'root ::= "yes" | "no"', temperature: 1, seed, maxTokens: 8 });
      expect(reply.stopReason).toBe("eos");
      expect(["yes", "no"]).toContain(reply.text);
      answers.add(reply.text);
      firstPieces.add(model.tokenizer.tokenText(reply.tokens[0]));
    }
    expect(answers).toEqual(new Set(["yes", "no"]));
    // The word-boundary form is allowed: some reply starts with a ▁ token, which decoding shows without the space.
    expect([...firstPieces].some((piece) => piece.startsWith("\u2581"))).toBe(true);
  });

  it("yes/no in generate: the output is matched byte for byte, so after a prompt ' yes' needs a grammar that allows the space", async () => {
    for (let seed = 1; seed <= 8; seed++) {
      const strict = await fromPrompt(() => session.generate("", { grammar: 'root ::= "yes" | "no"', temperature: 1, seed, maxTokens: 8 }));
      expect(["yes", "no"]).toContain(strict.result.text);
      const spaced = await fromPrompt(() => session.generate("", { grammar: 'root ::= " "? ("yes" | "no")', temperature: 1, seed, maxTokens: 8 }));
      expect(["yes", "no", " yes", " no"]).toContain(spaced.result.text);
      expect(spaced.result.stopReason).toBe("eos");
    }
  });

  it("a complete output that cannot grow ends the generation at once: no EOS is sampled and the last token is not evaluated", async () => {
    let evaluations = 0;
    const { result } = await fromPrompt(() =>
      session.generate("", { grammar: 'root ::= "abc"', temperature: 1, seed: 1, maxTokens: 16, onRouting: (layer) => void (layer === 0 && evaluations++) }),
    );
    expect(result).toMatchObject({ stopReason: "eos", text: "abc" });
    // One evaluation (the last prompt token, re-evaluated after the rewind) plus one per token but the last.
    expect(evaluations).toBe(1 + result.tokens.length - 1);
  });

  it("a custom sampler receives the masked logits: exactly the grammar's allowed tokens are finite", async () => {
    const grammar = Grammar.fromGbnf('root ::= ("yes" | "no") "!"');
    const matcher = grammar.createMatcher(grammarVocabulary(model.tokenizer));
    const expected = Array.from(matcher.allowedTokens());
    const seen: number[][] = [];
    await fromPrompt(() =>
      session.generate("", {
        grammar,
        maxTokens: 6,
        sampler: (logits) => {
          const finite: number[] = [];
          for (let id = 0; id < logits.length; id++) if (logits[id] !== -Infinity) finite.push(id);
          seen.push(finite);
          return finite[0];
        },
      }),
    );
    expect(seen[0]).toEqual(expected);
    expect(seen[0].length).toBeGreaterThan(1);
    expect(seen[0].length).toBeLessThan(100);
    // A sampler that picks a masked token is refused.
    await expect(fromPrompt(() => session.generate("", { grammar, maxTokens: 2, sampler: () => 13 }))).rejects.toThrow(/masked or banned/);
  });

  it("masking works on a copy: the session's logits buffer keeps what the model computed", async () => {
    session.rewind(1);
    const buffer = await session.eval(model.tokenizer.encode(PROMPT).slice(-1));
    const before = Float32Array.from(buffer);
    // One byte is one token, which completes the grammar: generation masks these very logits and evaluates nothing.
    const { result } = await fromPrompt(() => session.generate("", { grammar: 'root ::= "7"', maxTokens: 4 }));
    expect(result).toMatchObject({ stopReason: "eos", text: "7" });
    expect(session.position).toBe(main.promptLength);
    let changed = 0;
    for (let id = 0; id < before.length; id++) if (!Object.is(buffer[id], before[id])) changed++;
    expect(changed).toBe(0);
    expect(before.filter((logit) => logit === -Infinity)).toHaveLength(0);
  });
});

describe("71 structured: UTF-8 inside JSON strings across byte tokens", () => {
  it("with byte tokens favoured, multi-byte characters are assembled from byte tokens; every chunk and the text are valid UTF-8 and parse", async () => {
    const { tokenizer } = model;
    const favourBytes = new Map<number, number>();
    const highByteTokens = new Set<number>();
    for (let id = 0; id < tokenizer.vocabSize; id++) {
      if (tokenizer.tokenType(id) !== TokenType.BYTE) continue;
      const byte = parseInt(tokenizer.tokenText(id).slice(3, 5), 16);
      if (byte >= 0x80) {
        highByteTokens.add(id);
        favourBytes.set(id, 12);
      }
    }
    const schema = { type: "object", properties: { text: { type: "string", minLength: 3, maxLength: 6 } }, required: ["text"] } as const;
    let assembled = 0;
    for (let seed = 1; seed <= 10; seed++) {
      const { chunks, result } = await fromPrompt(() =>
        session.generate("", { jsonSchema: schema, temperature: 1, seed, maxTokens: SCHEMA_MAX_TOKENS, logitBias: favourBytes }),
      );
      expect(result.stopReason).toBe("eos");
      for (const chunk of chunks) expect(chunk.text).not.toContain("\uFFFD");
      expect(chunks.map((c) => c.text).join("")).toBe(result.text);
      const value = JSON.parse(result.text) as { text: string };
      expect(result.json).toEqual(value);
      expect([...value.text].length).toBeGreaterThanOrEqual(3);
      expect([...value.text].length).toBeLessThanOrEqual(6);
      // Count characters spelled by two or more consecutive byte tokens.
      let run = 0;
      for (const token of [...result.tokens, -1]) {
        if (highByteTokens.has(token)) run++;
        else {
          if (run >= 2) assembled++;
          run = 0;
        }
      }
    }
    expect(assembled).toBeGreaterThanOrEqual(10);
  });

  it('a const "👋 こんにちは" comes out whole in chat.stream: 👋 (no such token) from its four byte tokens, no chunk splits a character', async () => {
    const { tokenizer } = model;
    const byteToken = new Map<string, number>();
    for (let id = 0; id < tokenizer.vocabSize; id++) if (tokenizer.tokenType(id) === TokenType.BYTE) byteToken.set(tokenizer.tokenText(id), id);
    const waveBytes = Array.from(new TextEncoder().encode("👋"), (byte) => byteToken.get(`<0x${byte.toString(16).toUpperCase().padStart(2, "0")}>`)!);
    expect(Array.from(tokenizer.encode("👋", { addBos: false })).slice(-4)).toEqual(waveBytes);
    using chat = model.createChat();
    for (let seed = 1; seed <= 4; seed++) {
      await chat.reset();
      const stream = chat.stream("Greet me.", { jsonSchema: { const: "👋 こんにちは" }, temperature: 1, seed, maxTokens: 64 });
      const chunks: string[] = [];
      for await (const { text } of stream) chunks.push(text);
      const result = await stream.result;
      expect(result.stopReason).toBe("eos");
      expect(chunks.every((text) => !text.includes("\uFFFD"))).toBe(true);
      expect(chunks.join("")).toBe(result.text);
      expect(result.json).toBe("👋 こんにちは");
      const at = result.tokens.indexOf(waveBytes[0]);
      expect(result.tokens.slice(at, at + 4)).toEqual(waveBytes);
    }
  });
});

describe("71 structured: bad input and outputs that are not complete", () => {
  it("malformed GBNF throws GrammarError GRAMMAR_SYNTAX with its line and column before anything is evaluated, in generate and chat", () => {
    const gbnf = 'root ::= answer\nanswer ::= "yes" | ("no"';
    const position = session.position;
    const fromGenerate = thrown(() => session.generate("", { grammar: gbnf }));
    expect(fromGenerate).toBeInstanceOf(GrammarError);
    expect(fromGenerate).toMatchObject({ code: "GRAMMAR_SYNTAX", line: 2 });
    expect((fromGenerate as GrammarError).column).toBeGreaterThan(1);
    expect((fromGenerate as GrammarError).message).toMatch(/line 2, column \d+/);
    using chat = model.createChat();
    expect(thrown(() => chat.send("Hi", { grammar: gbnf }))).toMatchObject({ code: "GRAMMAR_SYNTAX", line: 2 });
    expect(session.position).toBe(position);
    expect(chat.session.position).toBe(0);
  });

  it("an unsatisfiable schema generates nothing: stopReason maxTokens, and reading json throws JSON_SCHEMA_UNSATISFIABLE", async () => {
    const never = { type: "object", properties: { x: { enum: [] } }, required: ["x"] } as const;
    const { chunks, result } = await fromPrompt(() => session.generate("", { jsonSchema: never, maxTokens: 20 }));
    expect(chunks).toEqual([]);
    expect(result).toMatchObject({ stopReason: "maxTokens", text: "", tokens: [] });
    const error = thrown(() => result.json);
    expect(error).toBeInstanceOf(GrammarError);
    expect(error).toMatchObject({ code: "JSON_SCHEMA_UNSATISFIABLE" });

    using chat = model.createChat();
    const reply = await chat.send("Anything?", { jsonSchema: false, maxTokens: 20 });
    expect(reply).toMatchObject({ stopReason: "maxTokens", text: "", tokens: [] });
    expect(reply.usage.promptTokens).toBeGreaterThan(0);
    expect(thrown(() => reply.json)).toMatchObject({ code: "JSON_SCHEMA_UNSATISFIABLE" });
  });

  it("a generation cut at maxTokens: stopReason maxTokens, a valid but unfinished prefix, and json throws GRAMMAR_INCOMPLETE", async () => {
    const grammar = Grammar.fromJsonSchema(STRUCTURED_SCHEMAS.person);
    for (let seed = 1; seed <= 5; seed++) {
      const { result } = await fromPrompt(() => session.generate("", { jsonSchema: STRUCTURED_SCHEMAS.person, temperature: 1, seed, maxTokens: 5 }));
      expect(result.stopReason).toBe("maxTokens");
      expect(result.tokens).toHaveLength(5);
      expect(grammar.isPrefix(result.text)).toBe(true);
      expect(grammar.matches(result.text)).toBe(false);
      expect(() => JSON.parse(result.text)).toThrow(SyntaxError);
      const error = thrown(() => result.json);
      expect(error).toBeInstanceOf(GrammarError);
      expect(error).toMatchObject({ code: "GRAMMAR_INCOMPLETE" });
      // The throwing json is not enumerable: spreading, logging and JSON.stringify of the result still work.
      expect({ ...result }).not.toHaveProperty("json");
      expect(JSON.parse(JSON.stringify(result))).toEqual({ stopReason: "maxTokens", text: result.text, tokens: result.tokens, promptTokens: result.promptTokens });
    }
    using chat = model.createChat();
    const cut = await chat.send("A person.", { jsonSchema: STRUCTURED_SCHEMAS.person, maxTokens: 3 });
    expect(cut.stopReason).toBe("maxTokens");
    expect(thrown(() => cut.json)).toMatchObject({ code: "GRAMMAR_INCOMPLETE" });
  });

  it("a stop string or an abort that cuts the JSON gives a typed error on json, never the partial value", async () => {
    const { result } = await fromPrompt(() => session.generate("", { jsonSchema: STRUCTURED_SCHEMAS.flags, temperature: 0, stop: ",", maxTokens: SCHEMA_MAX_TOKENS }));
    expect(result.stopReason).toBe("stop");
    expect(thrown(() => result.json)).toMatchObject({ code: "GRAMMAR_INCOMPLETE" });

    using chat = model.createChat();
    const controller = new AbortController();
    const stream = chat.stream("Flags.", { jsonSchema: STRUCTURED_SCHEMAS.flags, temperature: 0, signal: controller.signal, maxTokens: SCHEMA_MAX_TOKENS });
    for await (const _ of stream) {
      controller.abort();
    }
    const aborted = await stream.result;
    expect(aborted.stopReason).toBe("abort");
    expect(thrown(() => aborted.json)).toMatchObject({ code: "GRAMMAR_INCOMPLETE" });
  });

  it("options are checked at the edge: grammar with jsonSchema, wrong types and unsupported keywords throw before any work", () => {
    using chat = model.createChat();
    const cases: [GenerateOptions, RegExp | string][] = [
      [{ grammar: 'root ::= "a"', jsonSchema: {} }, /cannot both be given/],
      [{ grammar: 42 as never }, /options\.grammar must be GBNF text or a Grammar; got 42$/],
      [{ grammar: null as never }, /options\.grammar must be GBNF text or a Grammar; got null/],
      [{ jsonSchema: "object" as never }, /options\.jsonSchema must be a JSON schema .*got "object"$/],
      [{ jsonSchema: [] as never }, /options\.jsonSchema must be a JSON schema .*got an array/],
      [{ jsonSchemas: {} } as never, /did you mean "jsonSchema"/],
    ];
    for (const [options, message] of cases) {
      expect(thrown(() => session.generate("", options))).toBeInstanceOf(TypeError);
      expect(() => session.generate("", options)).toThrow(message);
      expect(() => chat.send("Hi", options as never)).toThrow(message);
      expect(() => chat.stream("Hi", options as never)).toThrow(message);
    }
    const unsupported = thrown(() => session.generate("", { jsonSchema: { type: "string", pattern: "^a+$" } }));
    expect(unsupported).toBeInstanceOf(GrammarError);
    expect(unsupported).toMatchObject({ code: "JSON_SCHEMA_UNSUPPORTED", keyword: "pattern" });
    expect(() => chat.send("Hi", { jsonSchema: { type: "object", patternProperties: {} } })).toThrow(/"patternProperties"/);
    expect(chat.session.position).toBe(0);
  });
});
