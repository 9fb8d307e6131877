/**
 * Type-level claims about constrained results: `json` is typed from a const schema through `chat.send`,
 * `chat.stream` and `session.generate` without casts. Checked by running the TypeScript compiler on this file
 * (a wrong inference fails the test), plus deliberately wrong claims that must be reported.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { describe, expect, expectTypeOf, it } from "vitest";

import type { Chat, ChatResult } from "../lib/chat.js";
import { Grammar } from "../lib/grammar/index.js";
import type { JsonValue } from "../lib/grammar/types.js";
import type { GenerateResult, Session } from "../lib/session.js";
import { typeErrors } from "./helpers/type-errors.js";

/** Never called: the functions exist for the compiler to check their types. */
export async function typedResults(chat: Chat, session: Session): Promise<void> {
  // A literal schema infers without `as const`.
  const person = await chat.send("Who?", {
    jsonSchema: { type: "object", properties: { name: { type: "string" }, age: { type: "integer" } }, required: ["name"] },
    temperature: 0.7,
  });
  expectTypeOf(person.json).toEqualTypeOf<{ name: string; age?: number }>();
  expectTypeOf(person).toEqualTypeOf<ChatResult<{ name: string; age?: number }>>();
  expectTypeOf(person.text).toEqualTypeOf<string>();

  // A const schema declared elsewhere.
  const shape = {
    oneOf: [
      { type: "object", properties: { kind: { const: "circle" }, r: { type: "number" } }, required: ["kind", "r"] },
      { type: "object", properties: { kind: { const: "rect" }, w: { type: "integer" } }, required: ["kind", "w"] },
    ],
  } as const;
  const drawn = await chat.send("Draw.", { jsonSchema: shape, maxTokens: 64 });
  expectTypeOf(drawn.json).toEqualTypeOf<{ kind: "circle"; r: number } | { kind: "rect"; w: number }>();

  // Streams carry the type on their result.
  const stream = chat.stream("Tags?", { jsonSchema: { type: "array", items: { enum: ["a", "b"] }, maxItems: 3 } });
  expectTypeOf((await stream.result).json).toEqualTypeOf<("a" | "b")[]>();

  // A grammar made from a schema types the result too.
  const yesNo = Grammar.fromJsonSchema({ enum: ["yes", "no"] });
  expectTypeOf((await chat.send("Ok?", { grammar: yesNo })).json).toEqualTypeOf<"yes" | "no">();

  // GBNF text, or no constraint: json is undefined.
  expectTypeOf((await chat.send("Sum?", { grammar: 'root ::= [0-9]+' })).json).toEqualTypeOf<undefined>();
  expectTypeOf((await chat.send("Hi")).json).toEqualTypeOf<undefined>();
  expectTypeOf(await chat.send("Hi")).toEqualTypeOf<ChatResult>();

  // The schema `true` admits any JSON value.
  expectTypeOf((await chat.send("Anything.", { jsonSchema: true })).json).toEqualTypeOf<JsonValue>();

  // session.generate: the generator's return value is typed.
  const steps = session.generate("[INST] A point [/INST]", {
    jsonSchema: { type: "object", properties: { x: { type: "number" }, y: { type: "number" } }, required: ["x", "y"] },
  });
  let step = await steps.next();
  while (!step.done) step = await steps.next();
  expectTypeOf(step.value).toEqualTypeOf<GenerateResult<{ x: number; y: number }>>();
  expectTypeOf(step.value.json.x).toEqualTypeOf<number>();
  const plain = await session.generate("Hi").next();
  if (plain.done) expectTypeOf(plain.value.json).toEqualTypeOf<undefined>();

  // grammar and jsonSchema together do not type-check as a typed call (and throw at run time).
  // @ts-expect-error a typed json needs exactly one of them
  expectTypeOf((await chat.send("x", { grammar: yesNo, jsonSchema: { type: "string" } })).json).toEqualTypeOf<"yes" | "no">();
}

const root = join(import.meta.dirname, "..");

describe("72 structured: result types flow from the schema", () => {
  it("every type assertion in this file holds without casts, and wrong claims about json are caught", () => {
    const dir = join(root, ".cache", "types");
    mkdirSync(dir, { recursive: true });
    const wrong = join(dir, "structured-wrong.ts");
    writeFileSync(
      wrong,
      `import { expectTypeOf } from "vitest";
       import type { Chat } from "../../lib/chat.js";
       export async function f(chat: Chat) {
         const r = await chat.send("x", { jsonSchema: { type: "object", properties: { a: { type: "string" } }, required: ["a"] } });
         expectTypeOf(r.json).toEqualTypeOf<{ a?: string }>();
         const n: number = r.json.a;
         const plain = await chat.send("x");
         const s: string = plain.json;
         return [n, s];
       }\n`,
    );
    const [here, there] = typeErrors([join(root, "test", "72.structured.types.test.ts"), wrong]);
    expect(here).toEqual([]);
    expect(there).toHaveLength(3);
    expect(there.join("\n")).toMatch(/not assignable to type 'number'/);
    expect(there.join("\n")).toMatch(/'undefined' is not assignable to type 'string'/);
  });
});
