/**
 * JSON schema types, and {@link JsonSchemaToType}: the TypeScript type of the values a const schema admits
 * (as node-llama-cpp's `GbnfJsonSchemaToType`).
 * @module
 */

/**
 * A JSON value as `JSON.parse` returns it: the `json` type of a schema that allows anything (`true`, `{}`).
 * @example
 * ```ts
 * import type { JsonValue } from "mixtral-native";
 * const { json } = await chat.send("Any JSON, please.", { jsonSchema: true });
 * const value: JsonValue = json;
 * ```
 */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/**
 * A JSON value as a const schema may spell it (readonly arrays and objects): the type of `const` and `enum`
 * entries.
 * @example
 * ```ts
 * import { Grammar, type JsonValueInput } from "mixtral-native";
 * const origin = { x: 0, y: 0 } as const satisfies JsonValueInput;
 * const grammar = Grammar.fromJsonSchema({ const: origin }); // JsonGrammar<{ x: 0; y: 0 }>
 * ```
 */
export type JsonValueInput = string | number | boolean | null | readonly JsonValueInput[] | { readonly [key: string]: JsonValueInput };

/**
 * The names a schema's `type` keyword takes, alone or as a list.
 * @example
 * ```ts
 * import { Grammar, type JsonTypeName } from "mixtral-native";
 * const types = ["string", "null"] as const satisfies readonly JsonTypeName[];
 * const nullable = Grammar.fromJsonSchema({ type: types }); // JsonGrammar<string | null>
 * ```
 */
export type JsonTypeName = "object" | "array" | "string" | "number" | "integer" | "boolean" | "null";

/**
 * The supported JSON-schema subset (see docs/grammar.md). Other keywords type-check (schemas often come from
 * JSON files) but are rejected at run time with `JSON_SCHEMA_UNSUPPORTED` naming the keyword.
 * @example
 * ```ts
 * import { readFileSync } from "node:fs";
 * import { Grammar, type JsonSchema } from "mixtral-native";
 * const schema = JSON.parse(readFileSync("invoice.schema.json", "utf8")) as JsonSchema;
 * const grammar = Grammar.fromJsonSchema(schema); // JsonGrammar<JsonValue>: the type is known only at run time
 * ```
 */
export type JsonSchema = boolean | JsonSchemaObject;

/**
 * A JSON schema given as an object (the other form is `true`/`false`): the keywords of the supported subset.
 * @example
 * ```ts
 * import type { JsonSchemaObject } from "mixtral-native";
 * const person = {
 *   type: "object",
 *   properties: { name: { type: "string", maxLength: 40 }, tags: { type: "array", items: { type: "string" }, maxItems: 3 } },
 *   required: ["name"],
 * } as const satisfies JsonSchemaObject;
 * const { json } = await chat.send("Describe Ada Lovelace.", { jsonSchema: person }); // { name: string; tags?: string[] }
 * ```
 */
export interface JsonSchemaObject {
  readonly type?: JsonTypeName | readonly JsonTypeName[];
  readonly properties?: { readonly [name: string]: JsonSchema };
  readonly required?: readonly string[];
  readonly additionalProperties?: JsonSchema;
  readonly items?: JsonSchema;
  readonly minItems?: number;
  readonly maxItems?: number;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly enum?: readonly JsonValueInput[];
  readonly const?: JsonValueInput;
  readonly oneOf?: readonly JsonSchema[];
  readonly anyOf?: readonly JsonSchema[];
  readonly title?: string;
  readonly description?: string;
  readonly [keyword: string]: unknown;
}

type Prettify<T> = { [K in keyof T]: T[K] } & {};

/** Turns readonly const-schema values (from `const`/`enum`) into the mutable shapes `JSON.parse` returns. */
type Mutable<T> = T extends readonly unknown[] ? { -readonly [K in keyof T]: Mutable<T[K]> } : T extends object ? { -readonly [K in keyof T]: Mutable<T[K]> } : T;

type RequiredNames<S> = S extends { readonly required: readonly (infer Name)[] } ? Name : never;

type ObjectOf<Properties, Required> = Prettify<
  { -readonly [K in keyof Properties as K extends Required ? K : never]: JsonSchemaToType<Properties[K]> } & {
    -readonly [K in keyof Properties as K extends Required ? never : K]?: JsonSchemaToType<Properties[K]>;
  }
>;

type TypeOfName<Name, S> = Name extends "string"
  ? string
  : Name extends "number" | "integer"
    ? number
    : Name extends "boolean"
      ? boolean
      : Name extends "null"
        ? null
        : Name extends "array"
          ? S extends { readonly items: infer Items }
            ? JsonSchemaToType<Items>[]
            : JsonValue[]
          : Name extends "object"
            ? S extends { readonly properties: infer Properties }
              ? ObjectOf<Properties, RequiredNames<S>>
              : { [key: string]: JsonValue }
            : never;

type UnionOf<Schemas> = Schemas extends unknown ? JsonSchemaToType<Schemas> : never;

/**
 * The type of the values schema `S` admits. Give the schema as a const (`as const`, or directly to
 * `Grammar.fromJsonSchema`, whose type parameter is const).
 *
 * @example
 * ```ts
 * const schema = { type: "object", properties: { name: { type: "string" }, age: { type: "integer" } }, required: ["name"] } as const;
 * type Person = JsonSchemaToType<typeof schema>; // { name: string; age?: number }
 * ```
 */
export type JsonSchemaToType<S> = S extends true
  ? JsonValue
  : S extends false
    ? never
    : S extends { readonly const: infer Value }
      ? Mutable<Value>
      : S extends { readonly enum: readonly (infer Value)[] }
        ? Mutable<Value>
        : S extends { readonly oneOf: readonly (infer Options)[] }
          ? UnionOf<Options>
          : S extends { readonly anyOf: readonly (infer Options)[] }
            ? UnionOf<Options>
            : S extends { readonly type: readonly (infer Names)[] }
              ? Names extends unknown
                ? TypeOfName<Names, S>
                : never
              : S extends { readonly type: infer Name }
                ? TypeOfName<Name, S>
                : JsonValue;
