import { beforeAll, describe, expect, it } from "vitest";
import { DEAD } from "../lib/grammar/automaton.js";
import { compileGrammar } from "../lib/grammar/compile.js";
import { parseGbnf } from "../lib/grammar/gbnf.js";
import { Grammar, GrammarError, GrammarMatcher, TokenVocabulary } from "../lib/grammar/index.js";
import { CompiledGrammar } from "../lib/grammar/matcher.js";
import { createRandom } from "../lib/sampling/index.js";
import { loadMistralPieces, type MistralPieces } from "./helpers/mistral-pieces.js";

let mistral: MistralPieces;
let vocabulary: TokenVocabulary;

beforeAll(async () => {
  mistral = await loadMistralPieces();
  vocabulary = TokenVocabulary.from(mistral.pieces, { endTokens: [mistral.eosId] });
});

/** The allowed set by definition: every token whose bytes, run one by one from the state, never die. */
function bruteAllowed(compiled: CompiledGrammar, state: number): number[] {
  const automaton = compiled.automaton;
  const allowed: number[] = [];
  mistral.pieces.forEach((piece, id) => {
    if (id === mistral.eosId) {
      if (automaton.accepting[state] === 1) allowed.push(id);
      return;
    }
    if (piece.length > 0 && automaton.stepAll(state, piece) !== DEAD) allowed.push(id);
  });
  return allowed;
}

/** Internals of a matcher, to compare its masks with the definition at the state it is in. */
function stateOf(matcher: GrammarMatcher): { compiled: CompiledGrammar; state: number } {
  const internals = matcher as unknown as { compiled: CompiledGrammar; current(): number };
  return { compiled: internals.compiled, state: internals.current() };
}

/** Walks a matcher through random allowed tokens, checking the mask against the definition at every step. */
function checkRandomWalk(matcher: GrammarMatcher, seed: number, steps: number): number {
  const random = createRandom(seed);
  let checked = 0;
  for (let step = 0; step < steps && !matcher.isFinished; step++) {
    const { compiled, state } = stateOf(matcher);
    const allowed = Array.from(matcher.allowedTokens());
    expect(allowed).toEqual(bruteAllowed(compiled, state));
    checked++;
    if (allowed.length === 0) break;
    // Prefer non-end tokens so walks go deep; finish now and then.
    const nonEnd = allowed.filter((token) => token !== mistral.eosId);
    const pool = nonEnd.length > 0 && random.nextFloat() < 0.95 ? nonEnd : allowed;
    matcher.acceptToken(pool[Math.floor(random.nextFloat() * pool.length)]);
  }
  return checked;
}

describe("70 grammar: the trie masker allows exactly the tokens the definition allows", () => {
  const grammars: [string, () => Grammar][] = [
    ["a JSON object schema", () => Grammar.fromJsonSchema({ type: "object", properties: { name: { type: "string", maxLength: 6 }, n: { type: "number" }, tags: { type: "array", items: { enum: ["a", "bé"] } } }, required: ["name"] })],
    ["any JSON value", () => Grammar.fromJsonSchema({})],
    ["arithmetic", () => Grammar.fromGbnf('root ::= e\ne ::= t ([-+] t)*\nt ::= [0-9]+ | "(" e ")"')],
    ["non-ASCII classes", () => Grammar.fromGbnf('root ::= ([ぁ-ゟ] | [^a-zぁ-ゟ\\x00-\\x1f])+ "。"')],
  ];
  for (const [name, make] of grammars) {
    it(`${name}: 3 random walks of up to 12 tokens agree with a per-token check at every state`, () => {
      const grammar = make();
      let checked = 0;
      for (let seed = 1; seed <= 3; seed++) checked += checkRandomWalk(grammar.createMatcher(vocabulary), seed * 31, 12);
      expect(checked).toBeGreaterThanOrEqual(6);
    });
  }

  it("after tables are flushed (a tiny state budget), matchers replay their bytes and masks stay exact", () => {
    const compiled = new CompiledGrammar(compileGrammar(parseGbnf('root ::= "(" root ")" | "x"')), 8);
    const matcher = new GrammarMatcher(compiled, vocabulary);
    const open = mistral.tokenOf("(");
    for (let depth = 0; depth < 12; depth++) {
      expect(Array.from(matcher.allowedTokens())).toEqual(bruteAllowed(compiled, stateOf(matcher).state));
      matcher.acceptToken(open);
    }
    expect(compiled.automaton.epoch).toBeGreaterThan(0);
    const close = mistral.tokenOf(")");
    matcher.acceptToken(mistral.tokenOf("x"));
    for (let depth = 0; depth < 12; depth++) matcher.acceptToken(close);
    expect(matcher.canEnd).toBe(true);
    expect(new TextDecoder().decode(matcher.acceptedBytes)).toBe("(".repeat(12) + "x" + ")".repeat(12));
  });
});

describe("70 grammar: end tokens, control tokens and rejected tokens", () => {
  it("EOS is allowed exactly when the output is complete; BOS and UNK never are", () => {
    const grammar = Grammar.fromGbnf('root ::= "ab" "c"?');
    const matcher = grammar.createMatcher(vocabulary);
    const allowedNow = () => new Set(matcher.allowedTokens());
    expect(allowedNow().has(mistral.eosId)).toBe(false);
    matcher.acceptBytes(new TextEncoder().encode("ab"));
    expect(matcher.canEnd).toBe(true);
    expect(allowedNow().has(mistral.eosId)).toBe(true);
    expect(allowedNow().has(mistral.bosId)).toBe(false);
    expect(allowedNow().has(0)).toBe(false);
    matcher.acceptToken(mistral.tokenOf("c"));
    expect([...allowedNow()]).toEqual([mistral.eosId]);
    matcher.acceptToken(mistral.eosId);
    expect(matcher.isFinished).toBe(true);
    expect(matcher.allowedCount).toBe(0);
  });

  it("accepting a disallowed token throws GRAMMAR_TOKEN_REJECTED and leaves the state unchanged", () => {
    const grammar = Grammar.fromGbnf('root ::= "yes" | "no"');
    const matcher = grammar.createMatcher(vocabulary);
    matcher.acceptToken(mistral.tokenOf("y"));
    const before = Array.from(matcher.allowedTokens());
    for (const token of [mistral.tokenOf("no"), mistral.eosId, mistral.bosId]) {
      expect(() => matcher.acceptToken(token)).toThrow(GrammarError);
      try {
        matcher.acceptToken(token);
      } catch (error) {
        expect((error as GrammarError).code).toBe("GRAMMAR_TOKEN_REJECTED");
      }
    }
    expect(Array.from(matcher.allowedTokens())).toEqual(before);
    expect(() => matcher.acceptToken(32000)).toThrow(RangeError);
    matcher.acceptToken(mistral.tokenOf("es"));
    matcher.acceptToken(mistral.eosId);
    expect(() => matcher.acceptToken(mistral.tokenOf("y"))).toThrow(/after an end token/);
  });

  it("applyMask sets exactly the disallowed logits to -Infinity, keeps the rest, and returns the count", () => {
    const grammar = Grammar.fromJsonSchema({ type: "object", properties: { ok: { type: "boolean" } }, required: ["ok"] });
    const matcher = grammar.createMatcher(vocabulary);
    matcher.acceptBytes(new TextEncoder().encode('{"ok":'));
    const random = createRandom(1);
    const logits = Float32Array.from({ length: 32000 }, () => random.nextFloat());
    const original = Float32Array.from(logits);
    const count = matcher.applyMask(logits);
    const allowed = new Set(matcher.allowedTokens());
    expect(count).toBe(allowed.size);
    expect(allowed.has(mistral.tokenOf("true"))).toBe(true);
    expect(allowed.has(mistral.tokenOf(" false"))).toBe(true);
    for (let id = 0; id < 32000; id++) {
      if (allowed.has(id)) expect(logits[id]).toBe(original[id]);
      else if (logits[id] !== -Infinity) expect.fail(`token ${id} should be masked`);
    }
    expect(() => matcher.applyMask(new Float32Array(10))).toThrow(/length 10; the vocabulary has 32000/);
  });

  it("a vocabulary that cannot spell the next byte gives GRAMMAR_DEAD_END, not an empty sample", () => {
    const encoder = new TextEncoder();
    const tiny = TokenVocabulary.from([new Uint8Array(0), encoder.encode("a"), encoder.encode("b")], { endTokens: [0] });
    const matcher = Grammar.fromGbnf('root ::= "c"').createMatcher(tiny);
    expect(() => matcher.applyMask(new Float32Array(3))).toThrow(expect.objectContaining({ code: "GRAMMAR_DEAD_END" }));
  });

  it("vocabulary and matcher arguments are validated", () => {
    expect(() => TokenVocabulary.from([new Uint8Array(1)], { endTokens: [1] })).toThrow(RangeError);
    expect(() => TokenVocabulary.from(["a"] as unknown as Uint8Array[], { endTokens: [] })).toThrow(TypeError);
    expect(() => TokenVocabulary.from([new Uint8Array(1)], {} as never)).toThrow(/endTokens/);
    expect(() => Grammar.fromGbnf('root ::= "a"').createMatcher({} as TokenVocabulary)).toThrow(TypeError);
    expect(TokenVocabulary.from(mistral.pieces, { endTokens: [mistral.eosId] })).toBe(vocabulary);
  });
});

describe("70 grammar: UTF-8 split across byte tokens", () => {
  const grammar = Grammar.fromJsonSchema({ type: "string" });
  const byteToken = (byte: number) => mistral.byteTokens[byte];

  it("after the lead byte of é (<0xC3>) only continuation bytes are allowed, and <0xA9> completes é", () => {
    const matcher = grammar.createMatcher(vocabulary);
    matcher.acceptToken(mistral.tokenOf('"'));
    matcher.acceptToken(byteToken(0xc3));
    const allowed = Array.from(matcher.allowedTokens());
    const expected = Array.from({ length: 64 }, (_, i) => byteToken(0x80 + i)).sort((a, b) => a - b);
    expect(allowed).toEqual(expected);
    matcher.acceptToken(byteToken(0xa9));
    matcher.acceptToken(mistral.tokenOf('"'));
    matcher.acceptToken(mistral.eosId);
    expect(grammar.parse(matcher.acceptedBytes)).toBe("é");
  });

  it("a 4-byte emoji from four byte tokens: <0xF0> allows only 0x90..0xBF next, then any continuation", () => {
    const matcher = grammar.createMatcher(vocabulary);
    matcher.acceptToken(mistral.tokenOf('"'));
    matcher.acceptToken(byteToken(0xf0));
    const second = Array.from(matcher.allowedTokens());
    expect(second).toEqual(Array.from({ length: 0x30 }, (_, i) => byteToken(0x90 + i)).sort((a, b) => a - b));
    for (const byte of [0x9f, 0x98, 0x80]) matcher.acceptToken(byteToken(byte));
    matcher.acceptToken(mistral.tokenOf('"'));
    expect(grammar.parse(matcher.acceptedBytes)).toBe("😀");
  });

  it("a token holding a whole multi-byte character is allowed like any other character", () => {
    const matcher = grammar.createMatcher(vocabulary);
    matcher.acceptToken(mistral.tokenOf('"'));
    const han = mistral.tokenOf("日");
    expect(han).toBeGreaterThan(0);
    expect(matcher.isAllowed(han)).toBe(true);
    matcher.acceptToken(han);
    expect(matcher.isAllowed(byteToken(0x80))).toBe(false);
  });

  it("a stray continuation byte or an invalid lead byte is never allowed inside a string", () => {
    const matcher = grammar.createMatcher(vocabulary);
    matcher.acceptToken(mistral.tokenOf('"'));
    for (const byte of [0x80, 0xbf, 0xc0, 0xc1, 0xf5, 0xff]) expect(matcher.isAllowed(byteToken(byte)), byte.toString(16)).toBe(false);
    for (const byte of [0xc2, 0xe0, 0xed, 0xf0, 0xf4]) expect(matcher.isAllowed(byteToken(byte)), byte.toString(16)).toBe(true);
  });
});
