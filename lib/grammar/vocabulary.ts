/**
 * A vocabulary's token byte pieces as a byte trie, built once per vocabulary and shared by every grammar.
 *
 * The trie is stored in preorder: node i's children follow it, and `nodeSkip[i]` is the index just past its
 * subtree. The masker walks it as a flat loop, advancing the grammar state one byte per node and jumping over
 * a whole subtree as soon as the state dies, so tokens that share a rejected prefix cost nothing.
 *
 * @example
 * ```ts
 * const vocabulary = TokenVocabulary.from(pieces, { endTokens: [2] });
 * const matcher = grammar.createMatcher(vocabulary);
 * ```
 * @module
 */

import { ArgumentRangeError, ArgumentTypeError } from "../errors.js";
import { describeValue } from "../validate.js";

/**
 * Options of {@link TokenVocabulary.from}.
 * @example
 * ```ts
 * import { TokenVocabulary } from "mixtral-native";
 * const vocabulary = TokenVocabulary.from(pieces, { endTokens: [model.tokenizer.eos!] });
 * ```
 */
export interface TokenVocabularyOptions {
  /** Tokens that end generation (EOS): allowed exactly when the grammar is complete. */
  endTokens: readonly number[];
}

const cache = new WeakMap<readonly Uint8Array[], TokenVocabulary[]>();

/**
 * A vocabulary's tokens as the grammar masker sees them: each token's bytes in a byte trie, built once per
 * vocabulary and shared by every grammar. Needed only to drive a {@link GrammarMatcher} yourself; `generate`
 * and `send` build their own.
 * @example
 * ```ts
 * import { Grammar, TokenVocabulary } from "mixtral-native";
 * const { tokenizer } = model;
 * const pieces = Array.from({ length: tokenizer.vocabSize }, (_, id) => tokenizer.pieceBytes(id)); // control tokens: empty
 * const vocabulary = TokenVocabulary.from(pieces, { endTokens: [tokenizer.eos!] });
 * const matcher = Grammar.fromGbnf('root ::= [0-9]+').createMatcher(vocabulary);
 * ```
 */
export class TokenVocabulary {
  /** Number of tokens (the logits' length). */
  readonly size: number;
  readonly endTokens: Int32Array;
  /** Each token's bytes; empty for control tokens, which a grammar never allows. */
  readonly pieces: readonly Uint8Array[];

  /** @internal Trie in preorder; node 0 is the root (empty prefix). */
  readonly nodeCount: number;
  /** @internal */ readonly nodeBytes: Uint8Array;
  /** @internal */ readonly nodeDepths: Uint16Array;
  /** @internal */ readonly nodeSkip: Int32Array;
  /**
   * @internal Tokens in trie preorder. Node i's own tokens are tokenOrder[nodeTokenIndex[i] .. nodeTokenIndex[i+1]),
   * and its whole subtree's are tokenOrder[nodeTokenIndex[i] .. nodeTokenIndex[nodeSkip[i]]).
   */
  readonly nodeTokenIndex: Int32Array;
  /** @internal */ readonly tokenOrder: Int32Array;
  /** @internal Index into {@link subtreeByteSets} of the bytes below node i (0 = none: a leaf). */
  readonly nodeSubtreeSet: Int32Array;
  /** @internal Distinct 256-bit byte sets, 8 words each; set 0 is empty. */
  readonly subtreeByteSets: Uint32Array;
  /** @internal Longest piece in bytes. */
  readonly maxDepth: number;

  private constructor(pieces: readonly Uint8Array[], endTokens: Int32Array) {
    this.size = pieces.length;
    this.pieces = pieces;
    this.endTokens = endTokens;

    const isEnd = new Uint8Array(pieces.length);
    for (const token of endTokens) isEnd[token] = 1;
    const tokens: number[] = [];
    let totalBytes = 0;
    let maxDepth = 0;
    for (let id = 0; id < pieces.length; id++) {
      const piece = pieces[id];
      if (piece.length === 0 || isEnd[id] === 1) continue;
      tokens.push(id);
      totalBytes += piece.length;
      if (piece.length > maxDepth) maxDepth = piece.length;
    }
    tokens.sort((a, b) => compareBytes(pieces[a], pieces[b]) || a - b);
    this.tokenOrder = Int32Array.from(tokens);
    this.maxDepth = maxDepth;

    const capacity = totalBytes + 1;
    const nodeBytes = new Uint8Array(capacity);
    const nodeDepths = new Uint16Array(capacity);
    const nodeSkip = new Int32Array(capacity);
    const nodeTokenIndex = new Int32Array(capacity + 1);
    const path = new Int32Array(maxDepth + 1); // path[d] = node at depth d on the current branch
    let nodeCount = 1;
    let depth = 0;
    let previous: Uint8Array = new Uint8Array(0);
    for (let k = 0; k < tokens.length; k++) {
      const piece = pieces[tokens[k]];
      let shared = 0;
      const limit = Math.min(depth, piece.length, previous.length);
      while (shared < limit && piece[shared] === previous[shared]) shared++;
      for (let d = depth; d > shared; d--) nodeSkip[path[d]] = nodeCount;
      for (let d = shared + 1; d <= piece.length; d++) {
        const node = nodeCount++;
        nodeBytes[node] = piece[d - 1];
        nodeDepths[node] = d;
        path[d] = node;
      }
      depth = piece.length;
      // Sorted order is preorder, so a node's tokens arrive before any later node is created.
      nodeTokenIndex[nodeCount] = k + 1;
      previous = piece;
    }
    for (let d = depth; d > 0; d--) nodeSkip[path[d]] = nodeCount;
    nodeSkip[0] = nodeCount;
    // Nodes without tokens start where the previous node's tokens end.
    for (let node = 1; node <= nodeCount; node++) nodeTokenIndex[node] = Math.max(nodeTokenIndex[node], nodeTokenIndex[node - 1]);

    this.nodeCount = nodeCount;
    this.nodeBytes = nodeBytes.slice(0, nodeCount);
    this.nodeDepths = nodeDepths.slice(0, nodeCount);
    this.nodeSkip = nodeSkip.slice(0, nodeCount);
    this.nodeTokenIndex = nodeTokenIndex.slice(0, nodeCount + 1);
    [this.nodeSubtreeSet, this.subtreeByteSets] = subtreeByteSets(this.nodeBytes, this.nodeSkip, nodeCount);
  }

  /**
   * Builds (or returns the cached) trie for `pieces`. Build it once per vocabulary: about 50 ms for 32000 tokens.
   * @throws TypeError / RangeError for malformed pieces or end-token ids.
   */
  static from(pieces: readonly Uint8Array[], options: TokenVocabularyOptions): TokenVocabulary {
    if (!Array.isArray(pieces)) throw new ArgumentTypeError("pieces must be an array of Uint8Array (one per token)");
    if (pieces.length === 0) throw new ArgumentRangeError("pieces must not be empty");
    for (let id = 0; id < pieces.length; id++) {
      if (!(pieces[id] instanceof Uint8Array)) throw new ArgumentTypeError(`pieces[${id}] must be a Uint8Array; got ${describeValue(pieces[id])}`);
    }
    if (options === null || typeof options !== "object" || !Array.isArray(options.endTokens)) {
      throw new ArgumentTypeError("options.endTokens must be an array of token ids (e.g. [eosId])");
    }
    for (const token of options.endTokens) {
      if (!Number.isInteger(token) || token < 0 || token >= pieces.length) {
        throw new ArgumentRangeError(`options.endTokens has ${String(token)}, which is not a token id in [0, ${pieces.length})`);
      }
    }
    const endTokens = Int32Array.from(new Set(options.endTokens));
    const built = cache.get(pieces) ?? [];
    const found = built.find((vocabulary) => sameTokens(vocabulary.endTokens, endTokens));
    if (found !== undefined) return found;
    const vocabulary = new TokenVocabulary(pieces, endTokens);
    built.push(vocabulary);
    cache.set(pieces, built);
    return vocabulary;
  }

  /** True when `token` is one of {@link endTokens}. */
  isEndToken(token: number): boolean {
    return this.endTokens.includes(token);
  }
}

/** For every node, the set of bytes on the paths below it, interned (set 0 = empty). */
function subtreeByteSets(nodeBytes: Uint8Array, nodeSkip: Int32Array, nodeCount: number): [Int32Array, Uint32Array] {
  const nodeSet = new Int32Array(nodeCount);
  const words: number[] = [0, 0, 0, 0, 0, 0, 0, 0];
  const setByKey = new Map<string, number>([["0,0,0,0,0,0,0,0", 0]]);
  const union = new Uint32Array(8);
  for (let node = nodeCount - 1; node >= 0; node--) {
    union.fill(0);
    for (let child = node + 1; child < nodeSkip[node]; child = nodeSkip[child]) {
      const byte = nodeBytes[child];
      union[byte >> 5] |= 1 << (byte & 31);
      const base = nodeSet[child] * 8;
      for (let w = 0; w < 8; w++) union[w] |= words[base + w];
    }
    const key = union.join(",");
    let set = setByKey.get(key);
    if (set === undefined) {
      set = setByKey.size;
      setByKey.set(key, set);
      for (let w = 0; w < 8; w++) words.push(union[w]);
    }
    nodeSet[node] = set;
  }
  return [nodeSet, Uint32Array.from(words)];
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

function sameTokens(a: Int32Array, b: Int32Array): boolean {
  return a.length === b.length && a.every((token) => b.includes(token));
}
