/**
 * The typed error of grammars, JSON schemas and constrained output.
 * @module
 */
import { MixtralError } from "../errors.js";

/**
 * Stable codes of {@link GrammarError}:
 * - `GRAMMAR_SYNTAX`: malformed GBNF (`line` and `column` say where).
 * - `GRAMMAR_UNDEFINED_RULE`, `GRAMMAR_DUPLICATE_RULE`, `GRAMMAR_NO_ROOT`: rule names that do not resolve.
 * - `GRAMMAR_LEFT_RECURSION`: a rule can reach itself without consuming input.
 * - `GRAMMAR_EMPTY_LANGUAGE`: the grammar admits no string at all.
 * - `GRAMMAR_TOO_LARGE`: a repetition bound or the expanded grammar exceeds the limits.
 * - `GRAMMAR_TOKEN_REJECTED`: a token that the grammar does not allow was accepted.
 * - `GRAMMAR_DEAD_END`: no token of the vocabulary can continue the output (a vocabulary without some byte).
 * - `GRAMMAR_INCOMPLETE`: the output stopped before the grammar was satisfied (e.g. at `maxTokens`).
 * - `GRAMMAR_MISMATCH`: a text checked against the grammar does not match it.
 * - `JSON_SCHEMA_UNSUPPORTED`: a keyword outside the supported subset (`keyword` names it).
 * - `JSON_SCHEMA_INVALID`: the schema itself is malformed (`path` says where).
 * - `JSON_SCHEMA_UNSATISFIABLE`: no JSON value satisfies the schema.
 * @example
 * ```ts
 * import { GrammarError, type GrammarErrorCode } from "mixtral-native";
 * const { json, stopReason } = await chat.send("Give me a colour as JSON.", { jsonSchema: { enum: ["red", "blue"] }, maxTokens: 8 });
 * try { console.log(json); }
 * catch (err) {
 *   const code: GrammarErrorCode | undefined = err instanceof GrammarError ? err.code : undefined;
 *   if (code === "GRAMMAR_INCOMPLETE") console.log(`cut short (${stopReason}); allow more maxTokens`);
 * }
 * ```
 */
export type GrammarErrorCode =
  | "GRAMMAR_SYNTAX"
  | "GRAMMAR_UNDEFINED_RULE"
  | "GRAMMAR_DUPLICATE_RULE"
  | "GRAMMAR_NO_ROOT"
  | "GRAMMAR_LEFT_RECURSION"
  | "GRAMMAR_EMPTY_LANGUAGE"
  | "GRAMMAR_TOO_LARGE"
  | "GRAMMAR_TOKEN_REJECTED"
  | "GRAMMAR_DEAD_END"
  | "GRAMMAR_INCOMPLETE"
  | "GRAMMAR_MISMATCH"
  | "JSON_SCHEMA_UNSUPPORTED"
  | "JSON_SCHEMA_INVALID"
  | "JSON_SCHEMA_UNSATISFIABLE";

/**
 * Where a {@link GrammarError} points: the GBNF position or the JSON-schema keyword and location, and the
 * cause. The error copies them onto its own `line`, `column`, `keyword` and `path`.
 * @example
 * ```ts
 * import { GrammarError, type GrammarErrorDetails } from "mixtral-native";
 * const details: GrammarErrorDetails = { keyword: "format", path: "/properties/date" };
 * throw new GrammarError("JSON_SCHEMA_UNSUPPORTED", 'keyword "format" is not supported', details);
 * ```
 */
export interface GrammarErrorDetails {
  /** 1-based line in the GBNF text. */
  line?: number;
  /** 1-based column (in characters) in the GBNF text. */
  column?: number;
  /** The JSON-schema keyword at fault. */
  keyword?: string;
  /** JSON pointer of the schema location at fault, e.g. `/properties/name`. */
  path?: string;
  cause?: unknown;
}

/**
 * A grammar or JSON schema that cannot be used, or output that does not satisfy one.
 *
 * @example
 * ```ts
 * try { Grammar.fromGbnf('root ::= "a" |'); }
 * catch (err) { if (err instanceof GrammarError) console.error(err.code, err.line, err.column); }
 * ```
 */
export class GrammarError extends MixtralError {
  declare readonly code: GrammarErrorCode;
  readonly line: number | undefined;
  readonly column: number | undefined;
  readonly keyword: string | undefined;
  readonly path: string | undefined;

  constructor(code: GrammarErrorCode, message: string, details: GrammarErrorDetails = {}) {
    super(code, message, details.cause === undefined ? undefined : { cause: details.cause });
    this.line = details.line;
    this.column = details.column;
    this.keyword = details.keyword;
    this.path = details.path;
  }
}
