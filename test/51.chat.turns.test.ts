import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import type { Chat, ChatResult } from "../lib/chat.js";
import { ChatTemplateError } from "../lib/chat-template.js";
import { ContextOverflowError } from "../lib/errors.js";
import { Mixtral } from "../lib/model.js";
import { cachedTestModel } from "../lib/testing/test-model.js";

const root = join(import.meta.dirname, "..");
const NO_EOS = new Map([[2, -Infinity]]);
/** Greedy, and EOS banned, so every reply runs to maxTokens and the counts below are exact. */
const GREEDY = { temperature: 0, logitBias: NO_EOS } as const;

let path: string;
let model: Mixtral;

beforeAll(async () => {
  path = await cachedTestModel({});
  model = await Mixtral.load(path, { threads: 1 });
});

afterAll(async () => {
  await model?.dispose();
});

function encode(text: string): number[] {
  return Array.from(model.tokenizer.encode(text, { addBos: false }));
}

function commonPrefix(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

function routingTotals(chat: Chat): number[] {
  return chat.routing().layers.map((layer) => layer.counts.reduce((sum, c) => sum + c, 0));
}

describe("51 chat: a turn", () => {
  it("send resolves with text, tokens, stopReason and usage, and the exchange joins the history", async () => {
    using chat = model.createChat({ systemPrompt: "You are a test." });
    const result = await chat.send("Hello", { ...GREEDY, maxTokens: 6 });
    expect(result.stopReason).toBe("maxTokens");
    expect(result.tokens).toHaveLength(6);
    expect(result.usage).toEqual({
      promptTokens: 1 + encode("[INST] You are a test.\n\nHello [/INST]").length,
      cachedTokens: 0,
      completionTokens: 6,
    });
    expect(result.text).toBe(model.tokenizer.decode(result.tokens, { continuation: true }).replace(/^ /, ""));
    expect(result.droppedMessages).toBe(0);
    expect(chat.history).toEqual([
      { role: "system", content: "You are a test." },
      { role: "user", content: "Hello" },
      { role: "assistant", content: result.text },
    ]);
  });

  it("temperature 0 is greedy: the reply is the argmax path from the same prompt", async () => {
    using chat = model.createChat();
    const result = await chat.send("Count with me", { temperature: 0, maxTokens: 5 });
    const prompt = chat.session.tokens.slice(0, result.usage.promptTokens);
    using session = model.createSession();
    const expected: number[] = [];
    let logits = await session.eval(prompt);
    while (expected.length < result.tokens.length) {
      let best = 0;
      for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
      expected.push(best);
      logits = await session.eval([best]);
    }
    expect(result.tokens).toEqual(expected);
  });

  it("logitBias -Infinity bans a token: the greedy first token never appears once banned", async () => {
    using chat = model.createChat();
    const first = (await chat.send("Hi", { ...GREEDY, maxTokens: 1 })).tokens[0];
    using other = model.createChat();
    const banned = await other.send("Hi", { temperature: 0, maxTokens: 6, logitBias: new Map([[first, -Infinity], [2, -Infinity]]) });
    expect(banned.tokens).not.toContain(first);
  });

  it("a stop string ends the reply, is neither returned nor streamed nor recorded, and stopReason is 'stop'", async () => {
    using probe = model.createChat();
    const full = (await probe.send("Tell me", { ...GREEDY, maxTokens: 12 })).text;
    const stop = full.slice(6, 9);
    expect(stop.length).toBe(3);
    using chat = model.createChat();
    const stream = chat.stream("Tell me", { ...GREEDY, maxTokens: 12, stop: [stop] });
    let streamed = "";
    for await (const chunk of stream) streamed += chunk.text;
    const result = await stream.result;
    expect(result.stopReason).toBe("stop");
    expect(result.text).toBe(full.slice(0, full.indexOf(stop)));
    expect(streamed).toBe(result.text);
    expect(chat.history.at(-1)).toEqual({ role: "assistant", content: result.text });
  });

  it("the same seed gives the same reply in another process; another seed gives another", async () => {
    const options = { seed: 1234, temperature: 1.5, topK: 0, topP: 1, minP: 0, maxTokens: 12 };
    const cache = join(root, ".cache", "chat-turns");
    mkdirSync(cache, { recursive: true });
    const child = join(cache, "seeded-send.mjs");
    writeFileSync(
      child,
      `import { Mixtral } from ${JSON.stringify(pathToFileURL(join(root, "dist", "model.js")).href)};\n` +
        `const model = await Mixtral.load(process.argv[2], { threads: 1 });\n` +
        `const chat = model.createChat({ systemPrompt: "Be random." });\n` +
        `const result = await chat.send("Say something", JSON.parse(process.argv[3]));\n` +
        `process.stdout.write(JSON.stringify(result.tokens));\n` +
        `await model.dispose();\n`,
    );
    const run = (o: object) => JSON.parse(execFileSync(process.execPath, [child, path, JSON.stringify(o)], { encoding: "utf8", timeout: 60_000 }));
    using chat = model.createChat({ systemPrompt: "Be random." });
    const here = (await chat.send("Say something", options)).tokens;
    expect(run(options)).toEqual(here);
    expect(run({ ...options, seed: 99 })).not.toEqual(here);
  });
});

describe("51 chat: KV reuse", () => {
  it("the next turn evaluates only what the cache lacks: the last reply token, EOS and the new message", async () => {
    using chat = model.createChat({ systemPrompt: "You are a test." });
    const first = await chat.send("Hello", { ...GREEDY, maxTokens: 6 });
    const second = await chat.send("And then?", { ...GREEDY, maxTokens: 6 });
    // maxTokens stops after sampling, so the first reply's last token was never evaluated.
    expect(second.usage.cachedTokens).toBe(first.usage.promptTokens + 6 - 1);
    const newMessage = encode("[INST] And then? [/INST]");
    expect(second.usage.promptTokens).toBe(first.usage.promptTokens + 6 + 1 + newMessage.length);
    const firstPrompt = Array.from(chat.session.tokens.slice(0, first.usage.promptTokens));
    expect(Array.from(chat.session.tokens)).toEqual([
      ...firstPrompt, ...first.tokens, model.tokenizer.eos, ...newMessage, ...second.tokens.slice(0, 5),
    ]);
    // Nothing was evaluated twice: every expert count is one of the cache's tokens.
    for (const total of routingTotals(chat)) expect(total).toBe(2 * chat.session.position);
  });

  it("a reply is reused as the tokens sampled, even when its text re-tokenizes differently", async () => {
    const idOf = (piece: string) => {
      for (let id = 0; id < model.tokenizer.vocabSize; id++) if (model.tokenizer.tokenText(id) === piece) return id;
      throw new Error(`no token ${piece}`);
    };
    const forced = ["▁H", "ello", "▁wor", "ld"].map(idOf);
    let next = 0;
    using chat = model.createChat();
    const first = await chat.send("Greet me", { maxTokens: 4, sampler: () => forced[next++] });
    expect(first.text).toBe("Hello world");
    expect(model.applyChatTemplate(chat.history)).toBe("<s>[INST] Greet me [/INST]Hello world</s>");
    // Re-tokenizing the rendered history gives other tokens for the reply ...
    const canonical = model.tokenizer.encode(model.applyChatTemplate(chat.history), { addBos: false, special: true });
    expect(Array.from(canonical.slice(first.usage.promptTokens, first.usage.promptTokens + 4))).not.toEqual(forced);
    // ... but the next turn still finds all of it in the cache.
    const second = await chat.send("Again", { ...GREEDY, maxTokens: 2 });
    expect(second.usage.cachedTokens).toBe(first.usage.promptTokens + 4 - 1);
    expect(Array.from(chat.session.tokens.slice(first.usage.promptTokens, first.usage.promptTokens + 4))).toEqual(forced);
  });

  it("setHistory keeps the cache for the prefix the new history shares", async () => {
    using chat = model.createChat();
    const first = await chat.send("Hello", { ...GREEDY, maxTokens: 6 });
    await chat.send("What next?", { ...GREEDY, maxTokens: 6 });
    await chat.setHistory(chat.history.slice(0, 2));
    const third = await chat.send("Something else", { ...GREEDY, maxTokens: 4 });
    const shared = commonPrefix(encode("[INST] What next? [/INST]"), encode("[INST] Something else [/INST]"));
    expect(third.usage.cachedTokens).toBe(first.usage.promptTokens + 6 + 1 + shared);
  });

  it("few-shot examples set with setHistory are evaluated once and reused by the next question", async () => {
    const fewShot = [
      { role: "system", content: "Answer with the capital only." },
      { role: "user", content: "France?" },
      { role: "assistant", content: "Paris" },
      { role: "user", content: "Italy?" },
      { role: "assistant", content: "Rome" },
    ] as const;
    const examples = model.tokenizer.encode(model.applyChatTemplate([...fewShot]), { addBos: false, special: true });
    using chat = model.createChat();
    await chat.setHistory([...fewShot]);
    const first = await chat.send("Spain?", { ...GREEDY, maxTokens: 3 });
    expect(first.usage.cachedTokens).toBe(0);
    expect(Array.from(chat.session.tokens.slice(0, examples.length))).toEqual(Array.from(examples));
    await chat.setHistory([...fewShot]);
    const second = await chat.send("Greece?", { ...GREEDY, maxTokens: 3 });
    expect(second.usage.cachedTokens).toBe(examples.length + commonPrefix(encode("[INST] Spain? [/INST]"), encode("[INST] Greece? [/INST]")));
  });

  it("setHistory refuses a history the template cannot continue with a user turn, and keeps the old one: the next send still works", async () => {
    using chat = model.createChat();
    await chat.send("Hello", { ...GREEDY, maxTokens: 3 });
    const kept = chat.history;
    for (const history of [
      [{ role: "user", content: "a" }, { role: "user", content: "b" }],
      [{ role: "user", content: "a" }, { role: "assistant", content: "b" }, { role: "assistant", content: "c" }],
      [{ role: "user", content: "ends with the user" }],
    ] as const) {
      expect(() => chat.setHistory([...history]), JSON.stringify(history)).toThrow(ChatTemplateError);
      expect(chat.history).toEqual(kept);
    }
    const next = await chat.send("Again", { ...GREEDY, maxTokens: 2 });
    expect(next.usage.completionTokens).toBeGreaterThan(0);
    expect(chat.history.slice(0, kept.length)).toEqual(kept);
  });
});

describe("51 chat: context shift", () => {
  async function fillUntilDrop(chat: Chat, maxTokens: number): Promise<{ before: Int32Array; history: ReturnType<Chat["history"]["slice"]>; result: ChatResult; text: string }> {
    for (let turn = 0; turn < 20; turn++) {
      const before = chat.session.tokens;
      const history = chat.history;
      const text = `Message number ${turn}`;
      const result = await chat.send(text, { ...GREEDY, maxTokens });
      if (result.droppedMessages > 0) return { before, history, result, text };
    }
    throw new Error("the context never filled up");
  }

  it("drop-oldest-turns drops the oldest exchanges, keeps the system prompt, and re-evaluates only past the common prefix", async () => {
    using chat = model.createChat({ systemPrompt: "You are a test.", contextSize: 96 });
    const { before, history, result, text } = await fillUntilDrop(chat, 8);
    expect(result.droppedMessages % 2).toBe(0);
    // Enough turns go that a quarter of the context is spare, so the next turn does not drop (and re-evaluate) again.
    expect(result.usage.promptTokens + 8).toBeLessThanOrEqual(96 - 24);
    expect(chat.history.length).toBeGreaterThanOrEqual(3);
    const kept = [history[0], ...history.slice(1 + result.droppedMessages)];
    expect(chat.history).toEqual([...kept, { role: "user", content: text }, { role: "assistant", content: result.text }]);
    const prompt = chat.session.tokens.slice(0, result.usage.promptTokens);
    expect(result.usage.cachedTokens).toBe(commonPrefix(before, prompt));
    expect(result.usage.cachedTokens).toBeGreaterThanOrEqual(1 + encode("[INST] You are a test.").length - 1);

    // The shifted chat answers exactly as a new chat holding the same remaining history.
    using fresh = model.createChat({ systemPrompt: "You are a test.", contextSize: 96 });
    await fresh.setHistory(kept);
    const reference = await fresh.send(text, { ...GREEDY, maxTokens: 8 });
    expect(Array.from(fresh.session.tokens.slice(0, reference.usage.promptTokens))).toEqual(Array.from(prompt));
    expect(reference.tokens).toEqual(result.tokens);

    const after = await chat.send("One more", { ...GREEDY, maxTokens: 8 });
    expect(after.droppedMessages).toBe(0);
    expect(after.usage.cachedTokens).toBe(result.usage.promptTokens + 8 - 1);
  });

  it("contextShift 'error' throws ContextOverflowError and leaves history and cache as they were", async () => {
    using chat = model.createChat({ systemPrompt: "You are a test.", contextSize: 96, contextShift: "error" });
    let error: unknown;
    for (let turn = 0; turn < 20 && error === undefined; turn++) {
      const history = chat.history;
      const tokens = chat.session.tokens;
      try {
        await chat.send(`Message number ${turn}`, { ...GREEDY, maxTokens: 8 });
      } catch (caught) {
        error = caught;
        expect(chat.history).toEqual(history);
        expect(chat.session.tokens).toEqual(tokens);
      }
    }
    expect(error).toBeInstanceOf(ContextOverflowError);
    expect((error as ContextOverflowError).code).toBe("CONTEXT_OVERFLOW");
  });

  it("a message that cannot fit even alone throws ContextOverflowError under drop-oldest-turns too", async () => {
    using chat = model.createChat({ contextSize: 32 });
    await expect(chat.send("word ".repeat(40), { maxTokens: 4 })).rejects.toBeInstanceOf(ContextOverflowError);
    expect(chat.history).toEqual([]);
  });
});

describe("51 chat: concurrency and abort", () => {
  it("concurrent send and stream calls run one at a time in call order, never interleaved", async () => {
    using chat = model.createChat();
    const events: string[] = [];
    const trace = (label: string) => ({ ...GREEDY, maxTokens: 4, onRouting: (layer: number) => layer === 0 && events.push(label) });
    const a = chat.send("first", trace("a"));
    const b = chat.stream("second", trace("b"));
    const c = chat.send("third", trace("c"));
    const [ra, rb, rc] = await Promise.all([a, b.result, c]);
    // One report per evaluation: the prompt, then each generated token but the last.
    expect(events.join("")).toBe("aaaabbbbcccc");
    expect(chat.history.map((m) => m.content)).toEqual(["first", ra.text, "second", rb.text, "third", rc.text]);
    expect(rc.usage.cachedTokens).toBe(rb.usage.promptTokens + 4 - 1);
  });

  it("abort mid-decode: stopReason 'abort', the partial reply is kept, and the chat answers again", async () => {
    using chat = model.createChat();
    const controller = new AbortController();
    const stream = chat.stream("Go on", { ...GREEDY, maxTokens: 40, signal: controller.signal });
    let chunks = 0;
    for await (const _chunk of stream) if (++chunks === 3) controller.abort();
    const result = await stream.result;
    expect(result.stopReason).toBe("abort");
    expect(result.usage.completionTokens).toBeGreaterThanOrEqual(3);
    expect(result.usage.completionTokens).toBeLessThan(40);
    expect(chat.history.at(-1)).toEqual({ role: "assistant", content: result.text });
    const next = await chat.send("Again", { ...GREEDY, maxTokens: 4 });
    expect(next.stopReason).toBe("maxTokens");
    expect(next.usage.completionTokens).toBe(4);
  });

  it("abort mid-prefill: stopReason 'abort', the cache is rolled back, nothing is recorded, and the chat answers again", async () => {
    using chat = model.createChat({ batchSize: 32 });
    await chat.send("Hello", { ...GREEDY, maxTokens: 4 });
    const position = chat.session.position;
    const history = chat.history;
    const routed = routingTotals(chat)[0];
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 150);
    const long = "The quick brown fox jumps over the lazy dog. ".repeat(160); // ~1800 tokens: seconds of prefill
    const result = await chat.send(long, { ...GREEDY, maxTokens: 4, signal: controller.signal });
    expect(result.stopReason).toBe("abort");
    expect(result.usage.completionTokens).toBe(0);
    expect(routingTotals(chat)[0]).toBeGreaterThan(routed); // some prefill chunks ran before the abort
    expect(chat.session.position).toBe(position);
    expect(chat.history).toEqual(history);
    const next = await chat.send("Short", { ...GREEDY, maxTokens: 4 });
    expect(next.usage.completionTokens).toBe(4);
    expect(next.usage.cachedTokens).toBe(position);
  });

  it("a signal aborted before the turn starts returns 'abort' without touching the chat", async () => {
    using chat = model.createChat();
    const result = await chat.send("Hello", { signal: AbortSignal.abort() });
    expect(result).toEqual({ text: "", tokens: [], stopReason: "abort", usage: { promptTokens: 0, cachedTokens: 0, completionTokens: 0 }, droppedMessages: 0 });
    expect(chat.history).toEqual([]);
    expect(chat.session.position).toBe(0);
  });

  it("a stream consumer that breaks out stops generation and frees the chat for the next call", async () => {
    using chat = model.createChat();
    const stream = chat.stream("Go on", { ...GREEDY, maxTokens: 60 });
    let chunks = 0;
    for await (const _chunk of stream) if (++chunks === 2) break;
    const result = await stream.result;
    expect(result.stopReason).toBe("abort");
    expect(result.usage.completionTokens).toBeGreaterThanOrEqual(2);
    expect(result.usage.completionTokens).toBeLessThan(10);
    const next = await chat.send("Again", { ...GREEDY, maxTokens: 3 });
    expect(next.tokens).toHaveLength(3);
  });
});

describe("51 chat: bad input", () => {
  it("unknown option names throw TypeError listing the valid ones, with a did-you-mean hint", () => {
    using chat = model.createChat();
    expect(() => chat.send("x", { temprature: 0 } as never)).toThrow(TypeError);
    expect(() => chat.send("x", { temprature: 0 } as never)).toThrow(/unknown option "temprature" \(did you mean "temperature"\?\); valid options: .*maxTokens/);
    expect(() => chat.stream("x", { maxToken: 3 } as never)).toThrow(/did you mean "maxTokens"/);
    expect(() => model.createChat({ systemprompt: "x" } as never)).toThrow(/did you mean "systemPrompt"/);
  });

  it("bad values throw TypeError or RangeError naming the argument before anything runs", () => {
    using chat = model.createChat();
    expect(() => chat.send(42 as never)).toThrow(/text must be a string/);
    expect(() => chat.send("x", { maxTokens: -1 })).toThrow(RangeError);
    expect(() => chat.send("x", { temperature: "hot" as never })).toThrow(/temperature/);
    expect(() => chat.send("x", { stop: [1] as never })).toThrow(/options\.stop\[0\]/);
    expect(() => chat.setHistory([{ role: "bot", content: "x" } as never])).toThrow(/messages\[0\]\.role/);
    expect(() => model.createChat({ contextShift: "never" as never })).toThrow(RangeError);
    expect(() => model.createChat({ expertsPerToken: 3 })).toThrow(/options\.expertsPerToken must be between 1 and 2/);
    expect(() => chat.setExpertsPerToken(0)).toThrow(RangeError);
    expect(chat.history).toEqual([]);
  });

  it("a disposed chat throws DisposedError", () => {
    const chat = model.createChat();
    chat.dispose();
    expect(() => chat.send("x")).toThrow(expect.objectContaining({ code: "DISPOSED" }));
  });
});

describe("51 chat: routing telemetry", () => {
  it("chat.routing() counts sum to evaluated tokens × experts per token, in every layer", async () => {
    using chat = model.createChat();
    await chat.send("Hello there", { ...GREEDY, maxTokens: 5 });
    const evaluated = chat.session.position; // no rewinds: every cached token was evaluated once
    expect(routingTotals(chat)).toEqual(Array(model.info.nLayers).fill(evaluated * model.info.nExpertsUsed));
    chat.setExpertsPerToken(1);
    const next = await chat.send("More", { ...GREEDY, maxTokens: 5 });
    const added = next.usage.promptTokens - next.usage.cachedTokens + 4;
    expect(routingTotals(chat)).toEqual(Array(model.info.nLayers).fill(evaluated * 2 + added * 1));
    await chat.reset();
    expect(routingTotals(chat)).toEqual(Array(model.info.nLayers).fill(0));
  });

  it("onRouting reports every layer after every evaluation: k distinct experts with weights summing to 1", async () => {
    using chat = model.createChat();
    const calls: { layer: number; experts: readonly number[]; weights: readonly number[] }[] = [];
    await chat.send("Hi", { ...GREEDY, maxTokens: 4, onRouting: (layer, experts, weights) => calls.push({ layer, experts, weights }) });
    expect(calls).toHaveLength(model.info.nLayers * 4);
    calls.forEach((call, i) => {
      expect(call.layer).toBe(i % model.info.nLayers);
      expect(call.experts).toHaveLength(2);
      expect(new Set(call.experts).size).toBe(2);
      for (const e of call.experts) expect(e >= 0 && e < model.info.nExperts).toBe(true);
      expect(call.weights[0] + call.weights[1]).toBeCloseTo(1, 5);
      expect(call.weights[0]).toBeGreaterThanOrEqual(call.weights[1]);
    });
  });
});
