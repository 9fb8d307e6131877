/**
 * Ten JSON schemas for constrained generation on a model, covering the supported subset: objects with required
 * and optional properties, arrays with minItems/maxItems, string enum and const, number, integer, boolean, null,
 * oneOf/anyOf, type unions and nesting.
 *
 * Every schema is bounded so that any output fits in {@link SCHEMA_MAX_TOKENS} tokens whatever the model samples
 * (a token is at least one byte): strings cost at most 6 bytes per character (a `\uXXXX` escape) plus quotes,
 * numbers at most 37 bytes, integers 17. The worst case of each is noted beside it.
 */
import type { JsonSchema } from "../../lib/grammar/types.js";

export const SCHEMA_MAX_TOKENS = 256;

export const STRUCTURED_SCHEMAS = {
  // {"name": 50, "age": 17, "email": 50} + keys and separators ≈ 150 bytes
  person: {
    type: "object",
    properties: { name: { type: "string", minLength: 1, maxLength: 8 }, age: { type: "integer" }, email: { type: "string", maxLength: 8 } },
    required: ["name", "age"],
    additionalProperties: false,
  },
  // ≈ 50 bytes
  flags: {
    type: "object",
    properties: { active: { type: "boolean" }, note: { type: "null" }, level: { enum: ["low", "mid", "high"] } },
    required: ["active", "note", "level"],
  },
  // 3 × (32 + 2) + 2 ≈ 104 bytes
  tags: { type: "array", items: { type: "string", minLength: 1, maxLength: 5 }, minItems: 1, maxItems: 3 },
  // 2 × 37 + keys ≈ 90 bytes
  point: { type: "object", properties: { x: { type: "number" }, y: { type: "number" } }, required: ["x", "y"] },
  // ≈ 70 bytes
  shape: {
    oneOf: [
      { type: "object", properties: { kind: { const: "circle" }, r: { type: "integer" } }, required: ["kind", "r"] },
      { type: "object", properties: { kind: { const: "rect" }, w: { type: "integer" }, h: { type: "integer" } }, required: ["kind", "w", "h"] },
    ],
  },
  // ≤ 32 bytes
  scalar: { anyOf: [{ type: "string", maxLength: 5 }, { type: "integer" }, { type: "null" }, { type: "boolean" }] },
  // {"user": {"id": 17, "roles": 3 × 8}, "meta": {"ok": 5}} ≈ 90 bytes
  nested: {
    type: "object",
    properties: {
      user: {
        type: "object",
        properties: { id: { type: "integer" }, roles: { type: "array", items: { enum: ["admin", "dev", "ops"] }, maxItems: 3 } },
        required: ["id"],
      },
      meta: { type: "object", properties: { ok: { type: "boolean" } } },
    },
    required: ["user"],
  },
  // "こんにちは" is 15 bytes, text ≤ 26 ≈ 70 bytes
  unicode: {
    type: "object",
    properties: { greeting: { enum: ["héllo", "こんにちは", "👋"] }, text: { type: "string", maxLength: 4 } },
    required: ["greeting", "text"],
  },
  // ≈ 70 bytes
  nullable: {
    type: "object",
    properties: { id: { type: ["integer", "null"] }, version: { const: 2 }, label: { type: ["string", "null"], maxLength: 4 } },
    required: ["id", "version", "label"],
  },
  // 2 × 2 × 17 + brackets ≈ 80 bytes
  matrix: { type: "array", items: { type: "array", items: { type: "integer" }, minItems: 2, maxItems: 2 }, minItems: 1, maxItems: 2 },
} as const satisfies Record<string, JsonSchema>;

export type StructuredSchemaName = keyof typeof STRUCTURED_SCHEMAS;
