/**
 * JSON schema → GBNF, for the subset in docs/grammar.md.
 *
 * Decisions (documented in docs/grammar.md):
 * - Objects list their declared `properties` in declaration order. Required ones always appear; optional ones
 *   may appear or not. No other property is ever generated, whatever `additionalProperties` says (output with
 *   fewer keys satisfies every setting of it). An object schema without `properties` admits any object.
 * - `oneOf` is generated as `anyOf`: exclusivity is not enforced, so give disjoint options.
 * - Whitespace is tight so a model cannot ramble: one optional space before the value, and one optional space
 *   after each `:` and `,`; no newlines, nothing else.
 * - Strings admit any Unicode text: raw UTF-8 (except `"`, `\` and U+0000..U+001F) and JSON escapes; `\u`
 *   escapes of surrogates are excluded, so a string's length is its number of characters.
 * - Numbers: at most 16 integer digits, 15 fraction digits and 2 exponent digits, so they cannot run forever.
 * - Unsatisfiable parts are pruned (an optional property that can never be valid is never generated); if the
 *   whole schema is unsatisfiable, conversion throws `JSON_SCHEMA_UNSATISFIABLE`.
 * @module
 */
import { GrammarError } from "./errors.js";
import { MAX_REPETITION } from "./gbnf.js";
import type { JsonSchema, JsonSchemaObject, JsonTypeName, JsonValueInput } from "./types.js";

const TYPE_NAMES: readonly JsonTypeName[] = ["object", "array", "string", "number", "integer", "boolean", "null"];

/** Keywords that shape the output. */
const SUPPORTED = new Set([
  "type",
  "properties",
  "required",
  "additionalProperties",
  "items",
  "minItems",
  "maxItems",
  "minLength",
  "maxLength",
  "enum",
  "const",
  "oneOf",
  "anyOf",
]);

/** Keywords that only annotate, so ignoring them is correct. */
const ANNOTATIONS = new Set(["$schema", "$id", "$comment", "title", "description", "default", "examples", "deprecated", "readOnly", "writeOnly"]);

const OBJECT_KEYWORDS = ["properties", "required", "additionalProperties"];
const ARRAY_KEYWORDS = ["items", "minItems", "maxItems"];
const STRING_KEYWORDS = ["minLength", "maxLength"];

/** GBNF of the building blocks, added to the grammar when used. */
const PRIMITIVES: Record<string, string> = {
  "json-char": String.raw`[^"\\\x00-\x1F] | "\\" (["\\/bfnrt] | "u" json-hex4)`,
  "json-hex4": String.raw`[0-9a-cA-CeEfF] [0-9a-fA-F]{3} | [dD] [0-7] [0-9a-fA-F]{2}`,
  "json-string": String.raw`"\"" json-char* "\""`,
  "json-number": String.raw`"-"? ("0" | [1-9] [0-9]{0,15}) ("." [0-9]{1,15})? ([eE] [-+]? [0-9]{1,2})?`,
  "json-integer": String.raw`"-"? ("0" | [1-9] [0-9]{0,15})`,
  "json-boolean": String.raw`"true" | "false"`,
  "json-null": String.raw`"null"`,
  "json-value": String.raw`json-object | json-array | json-string | json-number | json-boolean | json-null`,
  "json-object": String.raw`"{" (json-string ":" " "? json-value ("," " "? json-string ":" " "? json-value)*)? "}"`,
  "json-array": String.raw`"[" (json-value ("," " "? json-value)*)? "]"`,
};

const PRIMITIVE_DEPENDENCIES: Record<string, string[]> = {
  "json-char": ["json-hex4"],
  "json-string": ["json-char"],
  "json-value": ["json-object", "json-array", "json-string", "json-number", "json-boolean", "json-null"],
  "json-object": ["json-string", "json-value"],
  "json-array": ["json-value"],
};

const suffix = (ref: string): string => (ref ? ` ${ref}` : "");

/** Marks a schema no value satisfies. */
const NEVER = Symbol("never");
type Expression = string | typeof NEVER;

const SPACE = `" "?`;

class Converter {
  private readonly rules = new Map<string, string>();
  private readonly ruleByBody = new Map<string, string>();
  private readonly primitives = new Set<string>();

  convert(schema: unknown): string {
    const value = this.visit(schema, "", "root");
    if (value === NEVER) {
      throw new GrammarError("JSON_SCHEMA_UNSATISFIABLE", "no JSON value satisfies the schema", { path: "" });
    }
    const lines = [`root ::= ${SPACE} ${value}`];
    for (const [name, body] of this.rules) lines.push(`${name} ::= ${body}`);
    for (const name of [...this.primitives].sort()) lines.push(`${name} ::= ${PRIMITIVES[name]}`);
    return lines.join("\n") + "\n";
  }

  private usePrimitive(name: string): string {
    if (!this.primitives.has(name)) {
      this.primitives.add(name);
      for (const dependency of PRIMITIVE_DEPENDENCIES[name] ?? []) this.usePrimitive(dependency);
    }
    return name;
  }

  /** Names `body` as a rule (reusing an identical one) and returns the reference. */
  private rule(hint: string, body: string): string {
    const existing = this.ruleByBody.get(body);
    if (existing !== undefined) return existing;
    const base = hint.replace(/[^A-Za-z0-9-]+/g, "-").replace(/^-+|-+$/g, "") || "rule";
    let name = base === "root" ? "root-value" : base;
    for (let n = 2; this.rules.has(name) || name in PRIMITIVES; n++) name = `${base}-${n}`;
    this.rules.set(name, body);
    this.ruleByBody.set(body, name);
    return name;
  }

  private visit(schema: unknown, path: string, hint: string): Expression {
    if (schema === true) return this.usePrimitive("json-value");
    if (schema === false) return NEVER;
    if (schema === null || typeof schema !== "object" || Array.isArray(schema)) {
      throw invalid(path, `a schema must be an object or a boolean; got ${describe(schema)}`);
    }
    const s = schema as JsonSchemaObject;
    for (const keyword of Object.keys(s)) {
      if (SUPPORTED.has(keyword) || ANNOTATIONS.has(keyword)) continue;
      throw new GrammarError(
        "JSON_SCHEMA_UNSUPPORTED",
        `unsupported JSON-schema keyword "${keyword}" at ${pointer(path)}; supported: ${[...SUPPORTED].join(", ")}`,
        { keyword, path },
      );
    }
    checkShape(s, path);

    if (s.const !== undefined || s.enum !== undefined) return this.literals(s, path);

    const combinator = s.oneOf !== undefined ? "oneOf" : s.anyOf !== undefined ? "anyOf" : undefined;
    if (combinator !== undefined) {
      const siblings = Object.keys(s).filter((key) => key !== combinator && !ANNOTATIONS.has(key));
      if (siblings.length > 0) {
        throw new GrammarError(
          "JSON_SCHEMA_UNSUPPORTED",
          `"${siblings[0]}" beside "${combinator}" at ${pointer(path)} is not supported; move it into each option`,
          { keyword: siblings[0], path },
        );
      }
      const options = (s[combinator] as readonly JsonSchema[])
        .map((option, i) => this.visit(option, `${path}/${combinator}/${i}`, `${hint}-${i}`))
        .filter((option): option is string => option !== NEVER);
      if (options.length === 0) return NEVER;
      return options.length === 1 ? options[0] : this.rule(hint, options.join(" | "));
    }

    const types = typesOf(s);
    const options = types.map((type) => this.visitType(type, s, path, types.length > 1 ? `${hint}-${type}` : hint)).filter((option): option is string => option !== NEVER);
    if (options.length === 0) return NEVER;
    return options.length === 1 ? options[0] : this.rule(hint, options.join(" | "));
  }

  private visitType(type: JsonTypeName, s: JsonSchemaObject, path: string, hint: string): Expression {
    switch (type) {
      case "string":
        return this.string(s, hint);
      case "number":
        return this.usePrimitive("json-number");
      case "integer":
        return this.usePrimitive("json-integer");
      case "boolean":
        return this.usePrimitive("json-boolean");
      case "null":
        return this.usePrimitive("json-null");
      case "array":
        return this.array(s, path, hint);
      case "object":
        return this.object(s, path, hint);
    }
  }

  private string(s: JsonSchemaObject, hint: string): Expression {
    const min = s.minLength ?? 0;
    const max = s.maxLength ?? Infinity;
    if (max < min) return NEVER;
    if (min === 0 && max === Infinity) return this.usePrimitive("json-string");
    const char = this.usePrimitive("json-char");
    const count = max === Infinity ? `{${min},}` : min === max ? `{${min}}` : `{${min},${max}}`;
    return this.rule(hint, `"\\"" ${char}${count} "\\""`);
  }

  private array(s: JsonSchemaObject, path: string, hint: string): Expression {
    const min = s.minItems ?? 0;
    const max = s.maxItems ?? Infinity;
    if (max < min) return NEVER;
    if (max === 0) return `"[" "]"`;
    const item = s.items === undefined ? this.usePrimitive("json-value") : this.visit(s.items, `${path}/items`, `${hint}-item`);
    if (item === NEVER) return min === 0 ? `"[" "]"` : NEVER;
    const rest = `("," ${SPACE} ${item})`;
    const restCount = max === Infinity ? `{${Math.max(0, min - 1)},}` : `{${Math.max(0, min - 1)},${max - 1}}`;
    const items = `${item} ${rest}${restCount}`;
    return this.rule(hint, min === 0 ? `"[" (${items})? "]"` : `"[" ${items} "]"`);
  }

  private object(s: JsonSchemaObject, path: string, hint: string): Expression {
    if (s.properties === undefined) {
      if (s.additionalProperties === false) return `"{" "}"`;
      const required = s.required ?? [];
      if (required.length === 0) return this.usePrimitive("json-object");
    }
    const declared = s.properties ?? {};
    const required = new Set(s.required ?? []);
    const entries: { key: string; schema: JsonSchema; required: boolean }[] = Object.keys(declared).map((key) => ({
      key,
      schema: declared[key],
      required: required.has(key),
    }));
    for (const key of required) {
      if (!(key in declared)) {
        // A required property without a declared schema takes any value, unless extra properties are banned.
        const extra = s.additionalProperties ?? true;
        entries.push({ key, schema: extra, required: true });
      }
    }
    const members: { kv: string; required: boolean }[] = [];
    for (const entry of entries) {
      const value = this.visit(entry.schema, `${path}/properties/${escapePointer(entry.key)}`, `${hint}-${entry.key}`);
      if (value === NEVER) {
        if (entry.required) return NEVER;
        continue;
      }
      members.push({ kv: `${gbnfLiteral(JSON.stringify(entry.key))} ":" ${SPACE} ${value}`, required: entry.required });
    }
    // first(i): members i.. when none is written yet; more(i): members i.. after one was. Rules are made on use.
    const firsts = new Map<number, string>();
    const mores = new Map<number, string>();
    const more = (i: number): string => {
      if (i === members.length) return "";
      let ref = mores.get(i);
      if (ref === undefined) {
        const body = `"," ${SPACE} ${members[i].kv}${suffix(more(i + 1))}`;
        ref = this.rule(`${hint}-after-${i}`, members[i].required ? body : `(${body})?`);
        mores.set(i, ref);
      }
      return ref;
    };
    const first = (i: number): string => {
      if (i === members.length) return "";
      let ref = firsts.get(i);
      if (ref === undefined) {
        const body = `${members[i].kv}${suffix(more(i + 1))}`;
        const rest = members[i].required ? "" : first(i + 1);
        ref = this.rule(`${hint}-from-${i}`, members[i].required ? body : rest ? `${body} | ${rest}` : `(${body})?`);
        firsts.set(i, ref);
      }
      return ref;
    };
    const opening = first(0);
    return this.rule(hint, opening ? `"{" ${opening} "}"` : `"{" "}"`);
  }

  private literals(s: JsonSchemaObject, path: string): Expression {
    const candidates: readonly unknown[] = s.const !== undefined ? [s.const] : (s.enum as readonly unknown[]);
    const { const: _const, enum: _enum, ...rest } = s;
    const allowed = candidates.filter((value) => (s.enum === undefined || s.enum.some((member) => deepEqual(member, value))) && validates(value, rest, path));
    if (allowed.length === 0) return NEVER;
    const literals = [...new Set(allowed.map((value) => gbnfLiteral(JSON.stringify(value))))];
    return literals.length === 1 ? literals[0] : `(${literals.join(" | ")})`;
  }
}

/** The types a schema without const/enum/oneOf/anyOf admits; keywords imply their type when `type` is absent. */
function typesOf(s: JsonSchemaObject): JsonTypeName[] {
  if (s.type !== undefined) return typeof s.type === "string" ? [s.type] : [...new Set(s.type)];
  const implied: JsonTypeName[] = [];
  if (OBJECT_KEYWORDS.some((keyword) => keyword in s)) implied.push("object");
  if (ARRAY_KEYWORDS.some((keyword) => keyword in s)) implied.push("array");
  if (STRING_KEYWORDS.some((keyword) => keyword in s)) implied.push("string");
  return implied.length > 0 ? implied : [...TYPE_NAMES.filter((type) => type !== "integer")];
}

function checkShape(s: JsonSchemaObject, path: string): void {
  if (s.type !== undefined) {
    const names = typeof s.type === "string" ? [s.type] : s.type;
    if (!Array.isArray(names) && typeof s.type !== "string") throw invalid(`${path}/type`, `"type" must be a type name or an array of them`);
    for (const name of names) {
      if (!TYPE_NAMES.includes(name as JsonTypeName)) {
        throw invalid(`${path}/type`, `unknown type ${describe(name)}; types are ${TYPE_NAMES.join(", ")}`);
      }
    }
  }
  if (s.properties !== undefined && (s.properties === null || typeof s.properties !== "object" || Array.isArray(s.properties))) {
    throw invalid(`${path}/properties`, `"properties" must be an object of schemas`);
  }
  if (s.required !== undefined && (!Array.isArray(s.required) || s.required.some((name) => typeof name !== "string"))) {
    throw invalid(`${path}/required`, `"required" must be an array of property names`);
  }
  for (const keyword of ["minItems", "maxItems", "minLength", "maxLength"] as const) {
    const value = s[keyword];
    if (value === undefined) continue;
    if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
      throw invalid(`${path}/${keyword}`, `"${keyword}" must be an integer ≥ 0; got ${describe(value)}`);
    }
    if (value > MAX_REPETITION) {
      throw new GrammarError("JSON_SCHEMA_UNSUPPORTED", `"${keyword}" ${value} at ${pointer(path)} exceeds the supported ${MAX_REPETITION}`, {
        keyword,
        path,
      });
    }
  }
  if (s.enum !== undefined && !Array.isArray(s.enum)) throw invalid(`${path}/enum`, `"enum" must be an array`);
  for (const keyword of ["oneOf", "anyOf"] as const) {
    const value = s[keyword];
    if (value !== undefined && (!Array.isArray(value) || value.length === 0)) {
      throw invalid(`${path}/${keyword}`, `"${keyword}" must be a non-empty array of schemas`);
    }
  }
  for (const keyword of ["const", "enum"] as const) {
    if (s[keyword] === undefined) continue;
    if (!isJsonValue(s[keyword])) throw invalid(`${path}/${keyword}`, `"${keyword}" must hold JSON values (finite numbers, no undefined)`);
  }
}

function isJsonValue(value: unknown): boolean {
  if (value === null || typeof value === "string" || typeof value === "boolean") return true;
  if (typeof value === "number") return Number.isFinite(value);
  if (Array.isArray(value)) return value.every(isJsonValue);
  if (typeof value === "object") return Object.values(value as object).every(isJsonValue);
  return false;
}

/** Does `value` satisfy `schema` (the supported subset)? Used to keep only valid enum/const members. */
function validates(value: unknown, schema: JsonSchema, path: string): boolean {
  if (schema === true) return true;
  if (schema === false) return false;
  for (const keyword of Object.keys(schema)) {
    if (!SUPPORTED.has(keyword) && !ANNOTATIONS.has(keyword)) {
      throw new GrammarError("JSON_SCHEMA_UNSUPPORTED", `unsupported JSON-schema keyword "${keyword}" at ${pointer(path)}`, { keyword, path });
    }
  }
  checkShape(schema, path);
  const s = schema;
  if (s.type !== undefined) {
    const names = typeof s.type === "string" ? [s.type] : s.type;
    if (!names.some((name) => hasType(value, name))) return false;
  }
  if (s.const !== undefined && !deepEqual(s.const, value)) return false;
  if (s.enum !== undefined && !s.enum.some((member) => deepEqual(member, value))) return false;
  if (s.anyOf !== undefined && !s.anyOf.some((option, i) => validates(value, option, `${path}/anyOf/${i}`))) return false;
  if (s.oneOf !== undefined && s.oneOf.filter((option, i) => validates(value, option, `${path}/oneOf/${i}`)).length !== 1) return false;
  if (typeof value === "string") {
    const length = Array.from(value).length;
    if (s.minLength !== undefined && length < s.minLength) return false;
    if (s.maxLength !== undefined && length > s.maxLength) return false;
  }
  if (Array.isArray(value)) {
    if (s.minItems !== undefined && value.length < s.minItems) return false;
    if (s.maxItems !== undefined && value.length > s.maxItems) return false;
    if (s.items !== undefined && !value.every((item) => validates(item, s.items!, `${path}/items`))) return false;
  }
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    const record = value as Record<string, unknown>;
    for (const name of s.required ?? []) if (!(name in record)) return false;
    for (const [key, member] of Object.entries(record)) {
      const declared = s.properties?.[key];
      const memberSchema = declared ?? s.additionalProperties ?? true;
      if (!validates(member, memberSchema, `${path}/properties/${escapePointer(key)}`)) return false;
    }
  }
  return true;
}

function hasType(value: unknown, type: string): boolean {
  switch (type) {
    case "null":
      return value === null;
    case "boolean":
      return typeof value === "boolean";
    case "string":
      return typeof value === "string";
    case "number":
      return typeof value === "number";
    case "integer":
      return typeof value === "number" && Number.isInteger(value);
    case "array":
      return Array.isArray(value);
    case "object":
      return value !== null && typeof value === "object" && !Array.isArray(value);
  }
  return false;
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const keysA = Object.keys(a);
  const keysB = Object.keys(b);
  if (keysA.length !== keysB.length) return false;
  return keysA.every((key) => key in b && deepEqual((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]));
}

/** A GBNF string literal whose text is exactly `text`. */
export function gbnfLiteral(text: string): string {
  let out = '"';
  for (const char of text) {
    const code = char.codePointAt(0)!;
    if (char === "\\") out += "\\\\";
    else if (char === '"') out += '\\"';
    else if (char === "\n") out += "\\n";
    else if (char === "\r") out += "\\r";
    else if (char === "\t") out += "\\t";
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, "0")}`;
    else out += char;
  }
  return out + '"';
}

function invalid(path: string, message: string): GrammarError {
  return new GrammarError("JSON_SCHEMA_INVALID", `invalid JSON schema at ${pointer(path)}: ${message}`, { path });
}

function pointer(path: string): string {
  return path === "" ? "the root (/)" : path;
}

function escapePointer(key: string): string {
  return key.replace(/~/g, "~0").replace(/\//g, "~1");
}

function describe(value: unknown): string {
  return value === undefined ? "undefined" : JSON.stringify(value) ?? String(value);
}

/**
 * Converts a JSON schema to GBNF text (see the module notes for what is generated).
 *
 * @example
 * ```ts
 * jsonSchemaToGbnf({ type: "boolean" }); // 'root ::= " "? json-boolean\njson-boolean ::= "true" | "false"\n'
 * ```
 * @throws GrammarError `JSON_SCHEMA_UNSUPPORTED` (naming the keyword), `JSON_SCHEMA_INVALID` or
 *   `JSON_SCHEMA_UNSATISFIABLE`.
 */
export function jsonSchemaToGbnf(schema: JsonSchema): string {
  return new Converter().convert(schema);
}

export type { JsonValueInput };
