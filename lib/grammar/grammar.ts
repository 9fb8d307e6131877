/**
 * {@link Grammar}: a compiled GBNF grammar or JSON schema, and {@link JsonGrammar}, which also parses the result
 * into its inferred type.
 *
 * @example
 * ```ts
 * const grammar = Grammar.fromJsonSchema({ type: "object", properties: { ok: { type: "boolean" } }, required: ["ok"] });
 * const matcher = grammar.createMatcher(TokenVocabulary.from(pieces, { endTokens: [2] }));
 * // … mask, sample, accept until matcher.isFinished …
 * const value = grammar.parse(text); // { ok: boolean }
 * ```
 * @module
 */
import { DEAD } from "./automaton.js";
import { compileGrammar } from "./compile.js";
import { GrammarError } from "./errors.js";
import { parseGbnf } from "./gbnf.js";
import { jsonSchemaToGbnf } from "./json-schema.js";
import { CompiledGrammar, GrammarMatcher, type GrammarMatcherOptions } from "./matcher.js";
import type { JsonSchema, JsonSchemaToType } from "./types.js";
import { TokenVocabulary } from "./vocabulary.js";
import { ArgumentTypeError } from "../errors.js";
import { checkBoolean, checkOptions, describeValue } from "../validate.js";

/** Compiled grammars by GBNF text, so repeated calls with one schema reuse the warm automaton and masks. */
const compiledCache = new Map<string, CompiledGrammar>();
const CACHE_SIZE = 32;

function compile(gbnf: string): CompiledGrammar {
  let compiled = compiledCache.get(gbnf);
  if (compiled !== undefined) {
    compiledCache.delete(gbnf);
  } else {
    compiled = new CompiledGrammar(compileGrammar(parseGbnf(gbnf)));
    if (compiledCache.size >= CACHE_SIZE) compiledCache.delete(compiledCache.keys().next().value!);
  }
  compiledCache.set(gbnf, compiled);
  return compiled;
}

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

function toBytes(text: string | Uint8Array, name: string): Uint8Array {
  if (typeof text === "string") return encoder.encode(text);
  if (text instanceof Uint8Array) return text;
  throw new ArgumentTypeError(`${name} must be a string or a Uint8Array; got ${describeValue(text)}`);
}

/**
 * A compiled grammar (GBNF text or a JSON schema) that constrains generation. Immutable; share it across
 * generations and vocabularies. Pass it as the `grammar` option of {@link Session.generate} or {@link Chat.send},
 * or drive a {@link GrammarMatcher} yourself.
 * @example
 * ```ts
 * import { Grammar } from "mixtral-native";
 * const answer = Grammar.fromGbnf('root ::= " "? ("yes" | "no")');
 * const { text } = await chat.send("Is the sea salty?", { grammar: answer, temperature: 0 });
 * answer.matches(text); // true
 * ```
 */
export class Grammar {
  /** The GBNF text (for a JSON schema: the generated grammar). */
  readonly gbnf: string;
  /** @internal */
  protected readonly compiled: CompiledGrammar;

  protected constructor(gbnf: string) {
    this.gbnf = gbnf;
    this.compiled = compile(gbnf);
  }

  /**
   * Compiles GBNF text (llama.cpp's grammar format; see docs/grammar.md for the subset).
   *
   * @example
   * ```ts
   * const yesNo = Grammar.fromGbnf('root ::= " "? ("yes" | "no")');
   * yesNo.matches(" yes"); // true
   * ```
   * @throws GrammarError `GRAMMAR_SYNTAX` (with `line` and `column`), `GRAMMAR_UNDEFINED_RULE`,
   *   `GRAMMAR_NO_ROOT`, `GRAMMAR_DUPLICATE_RULE`, `GRAMMAR_LEFT_RECURSION`, `GRAMMAR_EMPTY_LANGUAGE`.
   */
  static fromGbnf(gbnf: string): Grammar {
    if (typeof gbnf !== "string") throw new ArgumentTypeError(`gbnf must be a string; got ${describeValue(gbnf)}`);
    return new Grammar(gbnf);
  }

  /**
   * Compiles a JSON schema (the subset in docs/grammar.md). The result's type is inferred from a const schema.
   *
   * @example
   * ```ts
   * const grammar = Grammar.fromJsonSchema({ type: "array", items: { enum: ["a", "b"] }, maxItems: 2 });
   * const value = grammar.parse('["a", "b"]'); // ("a" | "b")[]
   * ```
   * @throws GrammarError `JSON_SCHEMA_UNSUPPORTED` (naming the keyword), `JSON_SCHEMA_INVALID`,
   *   `JSON_SCHEMA_UNSATISFIABLE`.
   */
  static fromJsonSchema<const S extends JsonSchema>(schema: S): JsonGrammar<JsonSchemaToType<S>> {
    return new JsonGrammar<JsonSchemaToType<S>>(schema, jsonSchemaToGbnf(schema));
  }

  /** A matcher for one generation with `vocabulary`'s tokens. */
  createMatcher(vocabulary: TokenVocabulary, options?: GrammarMatcherOptions): GrammarMatcher {
    if (!(vocabulary instanceof TokenVocabulary)) throw new ArgumentTypeError("vocabulary must be a TokenVocabulary (TokenVocabulary.from(pieces, …))");
    const o = checkOptions<GrammarMatcherOptions>("options", options, ["dropLeadingSpace"]);
    const dropLeadingSpace = o.dropLeadingSpace === undefined ? undefined : checkBoolean("options.dropLeadingSpace", o.dropLeadingSpace);
    return new GrammarMatcher(this.compiled, vocabulary, { dropLeadingSpace });
  }

  /** True when all of `text` matches the grammar. */
  matches(text: string | Uint8Array): boolean {
    const state = this.compiled.run(toBytes(text, "text"));
    return state !== DEAD && this.compiled.automaton.accepting[state] === 1;
  }

  /** True when `text` can be extended into a match (the empty text included, whenever the grammar is satisfiable). */
  isPrefix(text: string | Uint8Array): boolean {
    return this.compiled.run(toBytes(text, "text")) !== DEAD;
  }

  /**
   * Checks that `text` matches; throws when it does not.
   * @throws GrammarError `GRAMMAR_INCOMPLETE` when `text` is a valid beginning that stops early (as output cut
   *   at `maxTokens`), `GRAMMAR_MISMATCH` when it cannot be one.
   */
  check(text: string | Uint8Array): void {
    const bytes = toBytes(text, "text");
    const state = this.compiled.run(bytes);
    if (state === DEAD) throw new GrammarError("GRAMMAR_MISMATCH", `the text does not match the grammar (${bytes.length} bytes)`);
    if (this.compiled.automaton.accepting[state] !== 1) {
      throw new GrammarError("GRAMMAR_INCOMPLETE", `the text stops before the grammar is complete (${bytes.length} bytes): it was cut short`);
    }
  }
}

/**
 * A grammar from a JSON schema, whose output {@link parse} turns into `T` (the type the schema admits). Made by
 * {@link Grammar.fromJsonSchema}; generation with it gives a result whose `json` has type `T`.
 * @example
 * ```ts
 * import { Grammar, type JsonGrammar } from "mixtral-native";
 * const point: JsonGrammar<{ x: number; y: number }> = Grammar.fromJsonSchema({
 *   type: "object", properties: { x: { type: "number" }, y: { type: "number" } }, required: ["x", "y"],
 * });
 * const { x, y } = point.parse('{"x": 1, "y": 2.5}');
 * ```
 */
export class JsonGrammar<T> extends Grammar {
  readonly schema: JsonSchema;

  /** @internal Use {@link Grammar.fromJsonSchema}. */
  constructor(schema: JsonSchema, gbnf: string) {
    super(gbnf);
    this.schema = schema;
  }

  /**
   * Parses generated output. Never returns a value the schema's grammar did not produce in full.
   * @throws GrammarError `GRAMMAR_INCOMPLETE` (cut short, e.g. at `maxTokens`) or `GRAMMAR_MISMATCH`.
   */
  parse(text: string | Uint8Array): T {
    const bytes = toBytes(text, "text");
    this.check(bytes);
    const decoded = strictDecoder.decode(bytes);
    try {
      return JSON.parse(decoded) as T;
    } catch (cause) {
      // The grammar only admits JSON; reaching this is a bug in the schema converter.
      throw new GrammarError("GRAMMAR_MISMATCH", "the output matched the grammar but is not JSON", { cause });
    }
  }
}
