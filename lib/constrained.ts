/**
 * Constrained generation glue: the grammar masker's view of a tokenizer's vocabulary (built once per tokenizer)
 * and the `grammar` / `jsonSchema` options resolved to a grammar.
 * @internal
 * @module
 */
import { Grammar, type JsonGrammar } from "./grammar/grammar.js";
import { TokenVocabulary } from "./grammar/vocabulary.js";
import type { JsonSchema } from "./grammar/types.js";
import type { Tokenizer } from "./tokenizer/tokenizer.js";

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
    throw new TypeError("options.grammar and options.jsonSchema cannot both be given");
  }
  if (grammar !== undefined) {
    if (grammar instanceof Grammar) return grammar;
    if (typeof grammar === "string") return Grammar.fromGbnf(grammar);
    throw new TypeError(`options.grammar must be GBNF text or a Grammar; got ${typeof grammar}`);
  }
  if (jsonSchema !== undefined) {
    if (jsonSchema === null || typeof jsonSchema !== "object") {
      throw new TypeError(`options.jsonSchema must be a JSON schema object; got ${jsonSchema === null ? "null" : typeof jsonSchema}`);
    }
    return Grammar.fromJsonSchema(jsonSchema as JsonSchema);
  }
  return undefined;
}
