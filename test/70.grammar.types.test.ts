/**
 * Type-level claims about JsonSchemaToType, checked by running the TypeScript compiler on this very file (so a
 * wrong inference fails the test), plus a deliberately wrong claim that must be reported.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, expectTypeOf, it } from "vitest";
import { Grammar, type JsonSchemaToType, type JsonValue } from "../lib/grammar/index.js";
import { typeErrors } from "./helpers/type-errors.js";

const person = {
  type: "object",
  properties: { name: { type: "string" }, age: { type: "integer" }, tags: { type: "array", items: { enum: ["a", "b"] } } },
  required: ["name", "age"],
} as const;
expectTypeOf<JsonSchemaToType<typeof person>>().toEqualTypeOf<{ name: string; age: number; tags?: ("a" | "b")[] }>();

const shape = {
  oneOf: [
    { type: "object", properties: { kind: { const: "circle" }, r: { type: "number" } }, required: ["kind", "r"] },
    { type: "object", properties: { kind: { const: "rect" }, w: { type: "integer" } }, required: ["kind", "w"] },
  ],
} as const;
expectTypeOf<JsonSchemaToType<typeof shape>>().toEqualTypeOf<{ kind: "circle"; r: number } | { kind: "rect"; w: number }>();

expectTypeOf<JsonSchemaToType<{ readonly anyOf: readonly [{ readonly type: "string" }, { readonly type: "integer" }, { readonly type: "null" }] }>>().toEqualTypeOf<string | number | null>();
expectTypeOf<JsonSchemaToType<{ readonly type: readonly ["string", "null"] }>>().toEqualTypeOf<string | null>();
expectTypeOf<JsonSchemaToType<{ readonly const: 2 }>>().toEqualTypeOf<2>();
expectTypeOf<JsonSchemaToType<{ readonly enum: readonly [1, "x", null] }>>().toEqualTypeOf<1 | "x" | null>();
expectTypeOf<JsonSchemaToType<{ readonly const: { readonly a: readonly [1, 2] } }>>().toEqualTypeOf<{ a: [1, 2] }>();
expectTypeOf<JsonSchemaToType<{ readonly type: "boolean" }>>().toEqualTypeOf<boolean>();
expectTypeOf<JsonSchemaToType<true>>().toEqualTypeOf<JsonValue>();
expectTypeOf<JsonSchemaToType<{}>>().toEqualTypeOf<JsonValue>();
expectTypeOf<JsonSchemaToType<{ readonly type: "object" }>>().toEqualTypeOf<{ [key: string]: JsonValue }>();
expectTypeOf<JsonSchemaToType<{ readonly type: "array" }>>().toEqualTypeOf<JsonValue[]>();
expectTypeOf<JsonSchemaToType<{ readonly type: "array"; readonly items: { readonly type: "array"; readonly items: { readonly type: "number" } } }>>().toEqualTypeOf<number[][]>();

// Grammar.fromJsonSchema infers from a literal schema without `as const`.
const nested = Grammar.fromJsonSchema({
  type: "object",
  properties: { user: { type: "object", properties: { id: { type: "integer" }, roles: { type: "array", items: { enum: ["admin", "dev"] } } }, required: ["id"] } },
  required: ["user"],
});
expectTypeOf<ReturnType<typeof nested.parse>>().toEqualTypeOf<{ user: { id: number; roles?: ("admin" | "dev")[] } }>();

const root = join(import.meta.dirname, "..");

describe("70 grammar: JsonSchemaToType infers the value type of a const schema", () => {
  it("every type assertion in this file holds (the compiler reports no error), and a wrong one is caught", () => {
    const wrongDir = join(root, ".cache", "types");
    mkdirSync(wrongDir, { recursive: true });
    const wrong = join(wrongDir, "wrong.ts");
    writeFileSync(
      wrong,
      `import { expectTypeOf } from "vitest";
       import type { JsonSchemaToType } from "../../lib/grammar/index.js";
       const schema = { type: "object", properties: { a: { type: "string" } }, required: ["a"] } as const;
       expectTypeOf<JsonSchemaToType<typeof schema>>().toEqualTypeOf<{ a?: string }>();\n`,
    );
    const [here, there] = typeErrors([join(root, "test", "70.grammar.types.test.ts"), wrong]);
    expect(here).toEqual([]);
    expect(there.join("\n")).toMatch(/toEqualTypeOf|not assignable|Expected/);
  });
});
