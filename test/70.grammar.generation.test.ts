import Ajv from "ajv";
import { beforeAll, describe, expect, it } from "vitest";
import { Grammar, GrammarError, TokenVocabulary, type JsonGrammar, type JsonSchema } from "../lib/grammar/index.js";
import { createSampler } from "../lib/sampling/index.js";
import { loadMistralPieces, type MistralPieces } from "./helpers/mistral-pieces.js";

/** Ten schemas covering every supported keyword, nesting, oneOf/anyOf, enums and non-ASCII strings. */
const SCHEMAS: Record<string, JsonSchema> = {
  person: {
    type: "object",
    properties: { name: { type: "string", minLength: 1, maxLength: 12 }, age: { type: "integer" }, email: { type: "string", maxLength: 10 } },
    required: ["name", "age"],
    additionalProperties: false,
  },
  flags: {
    type: "object",
    properties: { active: { type: "boolean" }, note: { type: "null" }, level: { enum: ["low", "mid", "high"] } },
    required: ["active", "note", "level"],
  },
  tags: { type: "array", items: { type: "string", minLength: 1, maxLength: 6 }, minItems: 1, maxItems: 4 },
  matrix: { type: "array", items: { type: "array", items: { type: "number" }, minItems: 2, maxItems: 2 }, maxItems: 3 },
  shape: {
    oneOf: [
      { type: "object", properties: { kind: { const: "circle" }, r: { type: "number" } }, required: ["kind", "r"] },
      { type: "object", properties: { kind: { const: "rect" }, w: { type: "integer" }, h: { type: "integer" } }, required: ["kind", "w", "h"] },
    ],
  },
  scalar: { anyOf: [{ type: "string", maxLength: 5 }, { type: "integer" }, { type: "null" }] },
  nested: {
    type: "object",
    properties: {
      user: {
        type: "object",
        properties: { id: { type: "integer" }, roles: { type: "array", items: { enum: ["admin", "dev", "ops"] }, maxItems: 3 } },
        required: ["id"],
      },
      meta: { type: "object", properties: { created: { type: "string", maxLength: 10 }, tags: { type: "array", items: { type: "string", maxLength: 4 }, maxItems: 2 } } },
    },
    required: ["user"],
  },
  unicode: {
    type: "object",
    properties: { greeting: { enum: ["héllo", "こんにちは", "👋"] }, text: { type: "string", minLength: 1, maxLength: 8 } },
    required: ["greeting", "text"],
  },
  nullable: {
    type: "object",
    properties: { id: { type: ["integer", "null"] }, version: { const: 2 }, label: { type: ["string", "null"], maxLength: 5 } },
    required: ["id", "version", "label"],
  },
  optional: {
    type: "object",
    properties: {
      a: { type: "array", items: { type: "boolean" }, maxItems: 3 },
      b: { type: "number" },
      c: { anyOf: [{ type: "boolean" }, { type: "string", maxLength: 3 }] },
    },
  },
};

const GENERATIONS = 200;

/** How many distinct values 200 random generations must reach: all 6 for `flags`, which has only 6. */
const MIN_DISTINCT: Record<string, number> = { flags: 6 };
const MAX_TOKENS = 400;

let mistral: MistralPieces;
let vocabulary: TokenVocabulary;

beforeAll(async () => {
  mistral = await loadMistralPieces();
  vocabulary = TokenVocabulary.from(mistral.pieces, { endTokens: [mistral.eosId] });
});

interface Generation {
  bytes: Uint8Array;
  finished: boolean;
  tokens: number[];
}

/** Random logits from a seeded xorshift, masked, sampled at temperature 1 over every allowed token. */
function generate(grammar: Grammar, seed: number, maxTokens: number): Generation {
  const matcher = grammar.createMatcher(vocabulary);
  const sampler = createSampler({ temperature: 1, topK: 0, topP: 1, minP: 0, seed });
  const logits = new Float32Array(vocabulary.size);
  let state = (seed * 2654435761) >>> 0 || 1;
  const tokens: number[] = [];
  while (tokens.length < maxTokens && !matcher.isFinished) {
    for (let i = 0; i < logits.length; i++) {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      logits[i] = (state >>> 0) * (8 / 4294967296);
    }
    matcher.applyMask(logits);
    const token = sampler.sample(logits);
    matcher.acceptToken(token);
    tokens.push(token);
  }
  return { bytes: matcher.acceptedBytes, finished: matcher.isFinished, tokens };
}

describe("70 grammar: random constrained generations always produce valid JSON", () => {
  const ajv = new Ajv({ allErrors: true, strict: false });
  for (const [name, schema] of Object.entries(SCHEMAS)) {
    it(`${name}: ${GENERATIONS} generations (random logits, temperature 1) all finish, JSON.parse and validate with ajv`, () => {
      const grammar = Grammar.fromJsonSchema(schema) as JsonGrammar<unknown>;
      const validate = ajv.compile(schema as object);
      const decoder = new TextDecoder("utf-8", { fatal: true });
      const distinct = new Set<string>();
      for (let seed = 1; seed <= GENERATIONS; seed++) {
        const { bytes, finished } = generate(grammar, seed, MAX_TOKENS);
        const text = decoder.decode(bytes);
        if (!finished) expect.fail(`seed ${seed} hit the ${MAX_TOKENS}-token cap: ${text}`);
        const value: unknown = JSON.parse(text);
        if (!validate(value)) expect.fail(`seed ${seed}: ${text} fails the schema: ${ajv.errorsText(validate.errors)}`);
        expect(grammar.parse(text)).toEqual(value);
        distinct.add(JSON.stringify(value));
      }
      // Random logits must explore, not repeat one answer.
      expect(distinct.size).toBeGreaterThanOrEqual(MIN_DISTINCT[name] ?? 50);
    });
  }

  it("multi-byte characters assembled from byte tokens appear in strings and parse back correctly", () => {
    const grammar = Grammar.fromJsonSchema(SCHEMAS.unicode) as JsonGrammar<{ text: string }>;
    const byteTokenIds = new Set(Array.from(mistral.byteTokens));
    let splitCharacters = 0;
    for (let seed = 1; seed <= GENERATIONS && splitCharacters < 5; seed++) {
      const { bytes, tokens } = generate(grammar, seed, MAX_TOKENS);
      const highByteTokens = tokens.filter((token) => byteTokenIds.has(token) && mistral.pieces[token][0] >= 0x80).length;
      if (highByteTokens === 0) continue;
      const value = grammar.parse(bytes);
      expect(Array.from(value.text).length).toBeLessThanOrEqual(8);
      splitCharacters++;
    }
    expect(splitCharacters).toBe(5);
  });

  it("a generation cut at the token cap gives GRAMMAR_INCOMPLETE from parse(), never a value", () => {
    const grammar = Grammar.fromJsonSchema(SCHEMAS.nested) as JsonGrammar<unknown>;
    for (let seed = 1; seed <= 20; seed++) {
      const { bytes, finished } = generate(grammar, seed, 4);
      expect(finished).toBe(false);
      expect(() => grammar.parse(bytes)).toThrow(expect.objectContaining({ code: "GRAMMAR_INCOMPLETE" }));
    }
  });

  it("a schema that can never be satisfied fails when compiled, before any token is generated", () => {
    expect(() => Grammar.fromJsonSchema({ type: "object", properties: { x: { enum: [] } }, required: ["x"] })).toThrow(GrammarError);
  });
});
