/**
 * Constrained generation: GBNF grammars and JSON schemas compiled to a byte-level automaton, and a token masker
 * over a vocabulary trie.
 * @module
 */
export { Grammar, JsonGrammar } from "./grammar.js";
export { GrammarMatcher, type GrammarMatcherOptions } from "./matcher.js";
export { TokenVocabulary, type TokenVocabularyOptions } from "./vocabulary.js";
export { GrammarError, type GrammarErrorCode, type GrammarErrorDetails } from "./errors.js";
export { parseGbnf, type GbnfExpression, type GbnfGrammar, type GbnfRule } from "./gbnf.js";
export { jsonSchemaToGbnf } from "./json-schema.js";
export type { JsonSchema, JsonSchemaObject, JsonSchemaToType, JsonTypeName, JsonValue, JsonValueInput } from "./types.js";
