/**
 * The token masker: which tokens may come next under a grammar, and the matcher state across a generation.
 *
 * The allowed set for a grammar state is computed by walking the vocabulary trie together with the automaton
 * (see vocabulary.ts and automaton.ts) and cached per state as a bitset, so a generation that revisits a state
 * (inside a JSON string, between array items) pays one cache lookup plus one pass over the logits.
 * @module
 */
import { Automaton, DEAD } from "./automaton.js";
import type { FlatGrammar } from "./compile.js";
import { GrammarError } from "./errors.js";
import type { TokenVocabulary } from "./vocabulary.js";
import { ArgumentRangeError, ArgumentTypeError } from "../errors.js";
import { checkLogits } from "../validate.js";

const SPACE = 0x20;

/** Allowed tokens of one state: a bitset over the vocabulary and its population. */
interface Mask {
  readonly bits: Int32Array;
  readonly count: number;
}

/** Masks of one (grammar, vocabulary) pair; forgets everything when the automaton flushes. */
class MaskCache {
  private readonly masks = new Map<number, Mask>();
  private epoch: number;

  constructor(
    private readonly automaton: Automaton,
    private readonly vocabulary: TokenVocabulary,
    private readonly capacity: number,
  ) {
    this.epoch = automaton.epoch;
  }

  /** The mask of `state`; with `dropLeadingSpace`, of `state` at the very start of an output whose first space is dropped. */
  get(state: number, dropLeadingSpace = false): Mask {
    if (this.epoch !== this.automaton.epoch) {
      this.masks.clear();
      this.epoch = this.automaton.epoch;
    }
    const key = dropLeadingSpace ? -1 - state : state;
    const cached = this.masks.get(key);
    if (cached !== undefined) return cached;
    const mask = computeMask(this.automaton, this.vocabulary, state, dropLeadingSpace);
    if (this.masks.size >= this.capacity) this.masks.delete(this.masks.keys().next().value!);
    this.masks.set(key, mask);
    return mask;
  }
}

/**
 * @internal Walks the vocabulary trie from `state`, marking every token whose bytes keep the automaton alive.
 * A dead byte skips its whole subtree; a subtree whose bytes all loop on the current state (the inside of a
 * JSON string) is allowed wholesale without visiting it. With `dropLeadingSpace`, a space as a token's first byte
 * is skipped (it leaves the state as it is), as decoding drops the word-boundary space that opens an output.
 */
export function computeMask(automaton: Automaton, vocabulary: TokenVocabulary, state: number, dropLeadingSpace = false): Mask {
  const bits = new Int32Array((vocabulary.size + 31) >>> 5);
  let count = 0;
  if (state !== DEAD) {
    const { nodeCount, nodeBytes, nodeDepths, nodeSkip, nodeTokenIndex, tokenOrder, nodeSubtreeSet, subtreeByteSets } = vocabulary;
    const states = new Int32Array(vocabulary.maxDepth + 1);
    states[0] = state;
    let transitions = automaton.transitions;
    for (let node = 1; node < nodeCount; ) {
      const depth = nodeDepths[node];
      const from = states[depth - 1];
      const byte = nodeBytes[node];
      let to = dropLeadingSpace && depth === 1 && byte === SPACE ? from : transitions[from * 256 + byte];
      if (to < 0) {
        to = automaton.computeTransition(from, byte);
        transitions = automaton.transitions; // may have grown
      }
      if (to === DEAD) {
        node = nodeSkip[node];
        continue;
      }
      let end = node + 1;
      const subtreeEnd = nodeSkip[node];
      // Cheap test first (the first child's byte is known to loop), then the full subset test. An unknown
      // transition only costs the shortcut: the walk computes it below and later masks use it.
      if (subtreeEnd > end && transitions[to * 256 + nodeBytes[end]] === to && automaton.loopsOver(to, subtreeByteSets, nodeSubtreeSet[node] * 8)) {
        end = subtreeEnd;
        transitions = automaton.transitions;
      }
      const first = nodeTokenIndex[node];
      const last = nodeTokenIndex[end];
      for (let k = first; k < last; k++) {
        const token = tokenOrder[k];
        bits[token >>> 5] |= 1 << (token & 31);
      }
      count += last - first;
      states[depth] = to;
      node = end;
    }
    if (automaton.accepting[state] === 1) {
      for (const token of vocabulary.endTokens) {
        bits[token >>> 5] |= 1 << (token & 31);
        count++;
      }
    }
  }
  return { bits, count };
}

/**
 * Options of {@link Grammar.createMatcher}.
 * @example
 * ```ts
 * // Chat replies: the first token's "▁" is a word boundary that decoding drops, so the grammar should not see it.
 * const matcher = grammar.createMatcher(vocabulary, { dropLeadingSpace: true });
 * ```
 */
export interface GrammarMatcherOptions {
  /**
   * Drop one space that opens the output before matching, as SentencePiece decoding drops the first token's
   * word-boundary space (`▁yes` at the start of a reply reads "yes"). The grammar then constrains the text as it
   * is decoded, and {@link GrammarMatcher.acceptedBytes} holds that text. Default false: every byte is matched.
   */
  dropLeadingSpace?: boolean;
}

/** What a compiled grammar keeps across matchers: the automaton and the masks per vocabulary. */
export class CompiledGrammar {
  readonly flat: FlatGrammar;
  readonly automaton: Automaton;
  private readonly masks = new WeakMap<TokenVocabulary, MaskCache>();

  /** `maxStates` bounds the automaton's tables before a flush (tests lower it to exercise flushing). */
  constructor(flat: FlatGrammar, maxStates?: number) {
    this.flat = flat;
    this.automaton = new Automaton(flat, maxStates);
  }

  masksFor(vocabulary: TokenVocabulary): MaskCache {
    let cache = this.masks.get(vocabulary);
    if (cache === undefined) {
      // 4 KiB per mask at 32000 tokens: 2048 masks stay under 8 MiB.
      cache = new MaskCache(this.automaton, vocabulary, 2048);
      this.masks.set(vocabulary, cache);
    }
    return cache;
  }

  /** Runs `bytes` from the start; returns the state (DEAD when rejected). */
  run(bytes: Uint8Array): number {
    return this.automaton.stepAll(this.automaton.initial, bytes);
  }
}

/**
 * Follows one generation under a grammar: masks logits before each sampling step and accepts the chosen token.
 *
 * @example
 * ```ts
 * const matcher = grammar.createMatcher(vocabulary);
 * let logits = await session.eval(model.tokenizer.encode("[INST] Pick a number. [/INST]"));
 * while (!matcher.isFinished) {
 *   matcher.applyMask(logits);            // disallowed tokens → -Infinity
 *   const token = sampler.sample(logits);
 *   matcher.acceptToken(token);           // an end token finishes the matcher
 *   if (!matcher.isFinished) logits = await session.eval([token]);
 * }
 * ```
 */
export class GrammarMatcher {
  readonly vocabulary: TokenVocabulary;
  /** See {@link GrammarMatcherOptions.dropLeadingSpace}. */
  readonly dropLeadingSpace: boolean;
  private readonly compiled: CompiledGrammar;
  private readonly masks: MaskCache;
  private state: number;
  private epoch: number;
  private bytes = new Uint8Array(256);
  private byteLength = 0;
  private finished = false;
  /** No token has been accepted yet (so a leading space would still be dropped). */
  private atStart = true;

  /** @internal Use {@link Grammar.createMatcher}. */
  constructor(compiled: CompiledGrammar, vocabulary: TokenVocabulary, options: GrammarMatcherOptions = {}) {
    this.compiled = compiled;
    this.vocabulary = vocabulary;
    this.dropLeadingSpace = options.dropLeadingSpace === true;
    this.masks = compiled.masksFor(vocabulary);
    this.state = compiled.automaton.initial;
    this.epoch = compiled.automaton.epoch;
  }

  /** True when the output so far is a complete match (an end token is allowed now). */
  get canEnd(): boolean {
    return !this.finished && this.compiled.automaton.accepting[this.current()] === 1;
  }

  /** True once an end token was accepted. */
  get isFinished(): boolean {
    return this.finished;
  }

  /** The bytes accepted so far (a copy). */
  get acceptedBytes(): Uint8Array {
    return this.bytes.slice(0, this.byteLength);
  }

  /** Number of tokens allowed next (end tokens included). */
  get allowedCount(): number {
    return this.finished ? 0 : this.mask().count;
  }

  /**
   * True when some token other than an end token may come next. False with {@link canEnd} true means the output
   * is complete and cannot grow: a generation loop can stop without sampling the end token.
   */
  get canContinue(): boolean {
    if (this.finished) return false;
    const ends = this.canEnd ? this.vocabulary.endTokens.length : 0;
    return this.mask().count > ends;
  }

  /** The token ids allowed next, ascending (end tokens included when {@link canEnd}). */
  allowedTokens(): Int32Array {
    if (this.finished) return new Int32Array(0);
    const { bits, count } = this.mask();
    const out = new Int32Array(count);
    let k = 0;
    for (let word = 0; word < bits.length; word++) {
      let value = bits[word];
      while (value !== 0) {
        const low = value & -value;
        out[k++] = word * 32 + 31 - Math.clz32(low);
        value ^= low;
      }
    }
    return out;
  }

  /** True when `token` may come next. */
  isAllowed(token: number): boolean {
    this.checkToken(token, "token");
    if (this.finished) return false;
    const { bits } = this.mask();
    return (bits[token >>> 5] & (1 << (token & 31))) !== 0;
  }

  /**
   * Sets every disallowed token's logit to -Infinity, in place; returns how many tokens remain allowed.
   * @throws GrammarError `GRAMMAR_DEAD_END` when no token is allowed (the output is finished, or the vocabulary
   *   lacks every byte that could continue it).
   */
  applyMask(logits: Float32Array): number {
    checkLogits("logits", logits);
    if (logits.length !== this.vocabulary.size) {
      throw new ArgumentRangeError(`logits has length ${logits.length}; the vocabulary has ${this.vocabulary.size} tokens`);
    }
    if (this.finished) throw new GrammarError("GRAMMAR_DEAD_END", "the output is already complete: an end token was accepted");
    const { bits, count } = this.mask();
    if (count === 0) {
      throw new GrammarError("GRAMMAR_DEAD_END", "no token of the vocabulary can continue the output under this grammar");
    }
    const size = logits.length;
    for (let word = 0; word < bits.length; word++) {
      const value = bits[word];
      if (value === -1) continue;
      const base = word * 32;
      const end = Math.min(32, size - base);
      if (value === 0) {
        for (let j = 0; j < end; j++) logits[base + j] = -Infinity;
      } else {
        for (let j = 0; j < end; j++) if (((value >>> j) & 1) === 0) logits[base + j] = -Infinity;
      }
    }
    return count;
  }

  /**
   * Advances over `token`. An end token finishes the matcher (allowed only when {@link canEnd}).
   * @throws GrammarError `GRAMMAR_TOKEN_REJECTED` (state unchanged) when the grammar does not allow it.
   */
  acceptToken(token: number): void {
    this.checkToken(token, "token");
    if (this.finished) throw new GrammarError("GRAMMAR_TOKEN_REJECTED", `token ${token} came after an end token`);
    if (this.vocabulary.isEndToken(token)) {
      if (!this.canEnd) throw new GrammarError("GRAMMAR_TOKEN_REJECTED", `end token ${token} came before the grammar was complete`);
      this.finished = true;
      return;
    }
    const piece = this.vocabulary.pieces[token];
    if (piece.length === 0) throw new GrammarError("GRAMMAR_TOKEN_REJECTED", `token ${token} is a control token with no text`);
    if (!this.acceptBytes(piece)) {
      throw new GrammarError("GRAMMAR_TOKEN_REJECTED", `token ${token} (${JSON.stringify(new TextDecoder().decode(piece))}) is not allowed here`);
    }
  }

  /**
   * Advances over raw bytes if the grammar allows all of them; returns false (state unchanged) otherwise. With
   * {@link dropLeadingSpace}, a space that opens the output is dropped first.
   */
  acceptBytes(bytes: Uint8Array): boolean {
    if (!(bytes instanceof Uint8Array)) throw new ArgumentTypeError("bytes must be a Uint8Array");
    if (this.finished) return false;
    if (bytes.length === 0) return true;
    if (this.atStart && this.dropLeadingSpace && bytes[0] === SPACE) bytes = bytes.subarray(1);
    const next = this.compiled.automaton.stepAll(this.current(), bytes);
    if (next === DEAD) return false;
    this.atStart = false;
    this.state = next;
    if (this.byteLength + bytes.length > this.bytes.length) {
      const grown = new Uint8Array(Math.max(this.bytes.length * 2, this.byteLength + bytes.length));
      grown.set(this.bytes.subarray(0, this.byteLength));
      this.bytes = grown;
    }
    this.bytes.set(bytes, this.byteLength);
    this.byteLength += bytes.length;
    return true;
  }

  /** Back to the start of the grammar. */
  reset(): void {
    this.byteLength = 0;
    this.finished = false;
    this.atStart = true;
    this.state = this.compiled.automaton.initial;
    this.epoch = this.compiled.automaton.epoch;
  }

  private mask() {
    const automaton = this.compiled.automaton;
    if (automaton.overBudget) automaton.flush();
    return this.masks.get(this.current(), this.atStart && this.dropLeadingSpace);
  }

  /** The state, replaying the accepted bytes when the automaton was flushed since. */
  private current(): number {
    const automaton = this.compiled.automaton;
    if (this.epoch !== automaton.epoch) {
      this.state = automaton.stepAll(automaton.initial, this.bytes.subarray(0, this.byteLength));
      this.epoch = automaton.epoch;
    }
    return this.state;
  }

  private checkToken(token: unknown, name: string): asserts token is number {
    if (typeof token !== "number" || !Number.isInteger(token) || token < 0 || token >= this.vocabulary.size) {
      throw new ArgumentRangeError(`${name} must be a token id in [0, ${this.vocabulary.size}); got ${String(token)}`);
    }
  }
}
