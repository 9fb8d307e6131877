/**
 * The Mistral v1 vocabulary (32000 tokens) from the devDependency `mistral-tokenizer-js`, in the form GGUF
 * stores it: token strings, scores and token types. Scores follow the merge rank (the first merge that makes a
 * token scores highest), so llama.cpp's score-driven SentencePiece BPE merges exactly as the merge list does.
 *
 * @example
 * ```ts
 * const vocab = await loadMistralV1Vocabulary();
 * vocab.tokens[22557]; // "▁Hello"
 * ```
 * @module
 */

/**
 * SentencePiece token types as GGUF's `tokenizer.ggml.token_type` stores them (the same numbers as the main
 * entry point's `TokenType`): the values of {@link Vocabulary.tokenTypes}.
 * @example
 * ```ts
 * import { loadMistralV1Vocabulary, TokenType } from "mixtral-native/testing";
 * const { tokens, tokenTypes } = await loadMistralV1Vocabulary();
 * const byteTokens = tokens.filter((_, id) => tokenTypes[id] === TokenType.BYTE); // 256: "<0x00>" … "<0xFF>"
 * ```
 */
export enum TokenType {
  NORMAL = 1,
  UNKNOWN = 2,
  CONTROL = 3,
  USER_DEFINED = 4,
  UNUSED = 5,
  BYTE = 6,
}

/**
 * The Mistral v1 vocabulary as GGUF stores it: token strings, scores and types, and the special ids. It has the
 * shape of a `TokenizerVocabulary`, so it builds a tokenizer directly.
 * @example
 * ```ts
 * import { Tokenizer } from "mixtral-native";
 * import { loadMistralV1Vocabulary, type Vocabulary } from "mixtral-native/testing";
 * const vocabulary: Vocabulary = await loadMistralV1Vocabulary();
 * const tokenizer = Tokenizer.fromVocabulary(vocabulary);
 * tokenizer.encode("Hello world!"); // Int32Array [1, 22557, 1526, 28808]
 * ```
 */
export interface Vocabulary {
  tokens: string[];
  scores: Float32Array;
  tokenTypes: Int32Array;
  unkId: number;
  bosId: number;
  eosId: number;
}

interface MistralTokenizerModule {
  vocabById: string[];
  merges: Map<string, number>;
}

let cached: Promise<Vocabulary> | undefined;

/**
 * Loads and converts the vocabulary once per process (later calls share the result). Needs
 * `mistral-tokenizer-js` installed.
 * @example
 * ```ts
 * import { loadMistralV1Vocabulary } from "mixtral-native/testing";
 * const { tokens, eosId } = await loadMistralV1Vocabulary();
 * console.log(tokens.length, tokens[eosId]); // 32000 "</s>"
 * ```
 */
export function loadMistralV1Vocabulary(): Promise<Vocabulary> {
  cached ??= build();
  return cached;
}

async function build(): Promise<Vocabulary> {
  let tokenizer: MistralTokenizerModule;
  try {
    tokenizer = (await import("mistral-tokenizer-js")).default as MistralTokenizerModule;
  } catch (cause) {
    throw new Error("The Mistral v1 vocabulary comes from the package mistral-tokenizer-js; install it (npm i -D mistral-tokenizer-js)", { cause });
  }
  const tokens = tokenizer.vocabById;
  if (tokens.length !== 32000) throw new Error(`mistral-tokenizer-js has ${tokens.length} tokens; expected 32000`);

  // The module keys merges as "left right" with odd priorities 1, 3, 5, … in merge order.
  const mergeRank = new Map<string, number>();
  let rank = 0;
  for (const pair of tokenizer.merges.keys()) {
    const merged = pair.replace(" ", "");
    if (!mergeRank.has(merged)) mergeRank.set(merged, rank);
    rank++;
  }

  const scores = new Float32Array(tokens.length);
  const tokenTypes = new Int32Array(tokens.length);
  for (let id = 0; id < tokens.length; id++) {
    const token = tokens[id];
    if (id === 0) tokenTypes[id] = TokenType.UNKNOWN;
    else if (id === 1 || id === 2) tokenTypes[id] = TokenType.CONTROL;
    else if (/^<0x[0-9A-F]{2}>$/.test(token)) tokenTypes[id] = TokenType.BYTE;
    else tokenTypes[id] = TokenType.NORMAL;

    const firstMerge = mergeRank.get(token);
    if (tokenTypes[id] !== TokenType.NORMAL) scores[id] = 0;
    else if (firstMerge !== undefined) scores[id] = -firstMerge;
    else scores[id] = -(rank + id); // single characters: never the result of a merge, so never compared
  }
  return { tokens, scores, tokenTypes, unkId: 0, bosId: 1, eosId: 2 };
}
