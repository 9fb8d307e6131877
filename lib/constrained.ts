/**
 * Constrained generation glue: the grammar masker's view of a tokenizer's vocabulary (built once per tokenizer),
 * the `grammar` / `jsonSchema` options resolved to a grammar, and the typed `json` a constrained result carries.
 * @internal
 * @module
 */
import { ArgumentTypeError } from "./errors.js";
import { GrammarError } from "./grammar/errors.js";
import { Grammar, JsonGrammar } from "./grammar/grammar.js";
import { TokenVocabulary } from "./grammar/vocabulary.js";
import type { JsonSchema } from "./grammar/types.js";
import type { Tokenizer } from "./tokenizer/tokenizer.js";
import { describeValue } from "./validate.js";

const vocabularies = new WeakMap<Tokenizer, TokenVocabulary>();

/** Each token's bytes as the masker matches them (control and unknown tokens empty, never allowed); EOS ends. */
export function grammarVocabulary(tokenizer: Tokenizer): TokenVocabulary {
  let vocabulary = vocabularies.get(tokenizer);
  if (vocabulary === undefined) {
    const { bytes, offsets, hidden } = tokenizer.pieceTable();
    const pieces: Uint8Array[] = [];
    for (let id = 0; id < tokenizer.vocabSize; id++) {
      pieces.push(hidden[id] === 1 ? new Uint8Array(0) : bytes.subarray(offsets[id], offsets[id + 1]));
    }
    vocabulary = TokenVocabulary.from(pieces, { endTokens: tokenizer.eos === null ? [] : [tokenizer.eos] });
    vocabularies.set(tokenizer, vocabulary);
  }
  return vocabulary;
}

/** The grammar the options ask for: GBNF text or a Grammar, or a JSON schema; at most one of them. */
export function resolveGrammar(grammar: unknown, jsonSchema: unknown): Grammar | JsonGrammar<unknown> | undefined {
  if (grammar !== undefined && jsonSchema !== undefined) {
    throw new ArgumentTypeError("options.grammar and options.jsonSchema cannot both be given");
  }
  if (grammar !== undefined) {
    if (grammar instanceof Grammar) return grammar;
    if (typeof grammar === "string") return Grammar.fromGbnf(grammar);
    throw new ArgumentTypeError(`options.grammar must be GBNF text or a Grammar; got ${describeValue(grammar)}`);
  }
  if (jsonSchema !== undefined) {
    if (typeof jsonSchema === "boolean") return Grammar.fromJsonSchema(jsonSchema);
    if (jsonSchema === null || typeof jsonSchema !== "object" || Array.isArray(jsonSchema)) {
      throw new ArgumentTypeError(`options.jsonSchema must be a JSON schema (an object or a boolean); got ${describeValue(jsonSchema)}`);
    }
    return Grammar.fromJsonSchema(jsonSchema as JsonSchema);
  }
  return undefined;
}

/**
 * A generation's constraint, resolved at the API edge. `grammar` is undefined when the schema can never be
 * satisfied: such a generation produces no token, ends with stopReason "maxTokens", and `failure` is what
 * reading its `json` throws.
 */
export interface Constraint {
  readonly grammar: Grammar | undefined;
  /** Set when the result carries `json`: a JSON schema, or a grammar made from one. */
  readonly json: JsonGrammar<unknown> | undefined;
  readonly failure: GrammarError | undefined;
}

/**
 * Resolves `options.grammar` / `options.jsonSchema`. Malformed GBNF, unsupported or invalid schemas throw here;
 * an unsatisfiable schema does not (issue 9: it surfaces as stopReason "maxTokens" and a typed error on `json`).
 */
export function resolveConstraint(grammar: unknown, jsonSchema: unknown): Constraint | undefined {
  try {
    const resolved = resolveGrammar(grammar, jsonSchema);
    if (resolved === undefined) return undefined;
    return { grammar: resolved, json: resolved instanceof JsonGrammar ? resolved : undefined, failure: undefined };
  } catch (error) {
    if (jsonSchema !== undefined && error instanceof GrammarError && error.code === "JSON_SCHEMA_UNSATISFIABLE") {
      return { grammar: undefined, json: undefined, failure: error };
    }
    throw error;
  }
}

/**
 * Gives `result` its `json`: the parsed output when the grammar ended it ("eos"), else a getter that throws the
 * typed error (non-enumerable, so spreading or logging the result does not throw). Never a value the grammar did
 * not produce in full. Results of unconstrained or plain-GBNF generations get no `json`.
 */
export function attachJson<R extends object>(result: R, constraint: Constraint | undefined, text: string, stopReason: string): R & { readonly json: unknown } {
  const withJson = result as R & { readonly json: unknown };
  if (constraint === undefined || (constraint.json === undefined && constraint.failure === undefined)) return withJson;
  let failure = constraint.failure;
  let value: unknown;
  if (failure === undefined) {
    if (stopReason !== "eos") {
      failure = new GrammarError(
        "GRAMMAR_INCOMPLETE",
        `the output is not complete JSON: generation ended with stopReason "${stopReason}" before the grammar was satisfied`,
      );
    } else {
      try {
        value = constraint.json!.parse(text);
      } catch (error) {
        if (!(error instanceof GrammarError)) throw error;
        failure = error;
      }
    }
  }
  if (failure === undefined) {
    Object.defineProperty(result, "json", { value, enumerable: true, writable: false, configurable: false });
  } else {
    const error = failure;
    Object.defineProperty(result, "json", {
      get() {
        throw error;
      },
      enumerable: false,
      configurable: false,
    });
  }
  return withJson;
}
