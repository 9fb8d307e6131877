/**
 * The sampler chain: {@link sample} for one call, {@link createSampler} for a generation loop.
 *
 * Order (llama.cpp's default chain, common/sampling.cpp): logitBias → penalties (repeat, frequency, presence
 * over the last `penaltyLastN` tokens) → topK → typicalP → topP → minP → temperature → draw. The filters see
 * the untempered logits, as in llama.cpp; temperature only shapes the final draw. Temperature 0 is greedy:
 * the highest logit after bias and penalties (lowest id on ties), with the filters skipped.
 *
 * @example
 * ```ts
 * const sampler = createSampler({ temperature: 0.7, topK: 40, seed: 1 });
 * sampler.accept(promptTokens);          // the prompt counts for the penalties
 * for (let i = 0; i < 64; i++) {
 *   const token = sampler.sample(logits); // records the token too
 * }
 * ```
 * @module
 */
import { ArgumentRangeError, ArgumentTypeError } from "../errors.js";
import { Candidates, applyMinP, applyTopK, applyTopP, applyTypicalP } from "./candidates.js";
import { assertKnownOptions, resolveSamplingOptions, type ResolvedSamplingOptions, type SamplingOptions } from "./options.js";
import { createRandom, randomSeed, type RandomSource, type SeededRandom } from "./random.js";
import { checkLogits, describeValue } from "../validate.js";

/**
 * Per-call context of {@link sample}: the tokens the penalties look at, and optionally a generator to draw with.
 * @example
 * ```ts
 * import { createRandom, sample, type SampleContext } from "mixtral-native";
 * const context: SampleContext = { previousTokens: session.tokens, random: createRandom(3) };
 * const token = sample(logits, { repeatPenalty: 1.1 }, context);
 * ```
 */
export interface SampleContext {
  /** Earlier tokens (prompt and generated), oldest first; the penalties use the last `penaltyLastN`. */
  previousTokens?: ArrayLike<number>;
  /** Overrides the generator; otherwise `options.seed` (or a random seed) seeds a fresh one for this call. */
  random?: RandomSource;
}

/**
 * A stateful sampler for a generation loop: scratch, penalty window and generator live across calls. Made by
 * {@link createSampler}.
 * @example
 * ```ts
 * import { createSampler, type Sampler } from "mixtral-native";
 * const sampler: Sampler = createSampler({ temperature: 0.7, repeatPenalty: 1.1 });
 * const prompt = model.tokenizer.encode("[INST] Tell me a joke. [/INST]");
 * sampler.accept(prompt); // the penalties see the prompt too
 * let logits = await session.eval(prompt);
 * for (let i = 0; i < 32; i++) {
 *   const token = sampler.sample(logits);
 *   if (token === model.tokenizer.eos) break;
 *   logits = await session.eval([token]);
 * }
 * console.log(`seed ${sampler.seed}`); // log it to reproduce this run
 * ```
 */
export interface Sampler {
  /** The validated options with their defaults. */
  readonly options: ResolvedSamplingOptions;
  /** The seed in use: `options.seed`, or the random one drawn at creation (log it to reproduce a run). */
  readonly seed: number;
  /** Chooses the next token from `logits` (-Infinity = masked) and records it in the penalty window. */
  sample(logits: Float32Array): number;
  /** Records tokens that were not sampled (the prompt, forced tokens) in the penalty window. */
  accept(tokens: number | ArrayLike<number>): void;
  /** The penalty window, oldest first. */
  previousTokens(): number[];
  /** Clears the window and restarts the generator from the seed. */
  reset(): void;
}

const SAMPLE_CONTEXT_NAMES = ["previousTokens", "random"];

/** Scratch for one vocabulary size. */
class Scratch {
  readonly size: number;
  readonly work: Float32Array;
  readonly counts: Int32Array;
  readonly unique: Int32Array;
  readonly candidates: Candidates;

  constructor(size: number) {
    this.size = size;
    this.work = new Float32Array(size);
    this.counts = new Int32Array(size);
    this.unique = new Int32Array(size);
    this.candidates = new Candidates(size);
  }
}

let sharedScratch: Scratch | undefined;

/** @internal Scratch reused by the stateless functions (JavaScript runs one of them at a time). */
export function scratchFor(size: number): Scratch {
  if (sharedScratch?.size !== size) sharedScratch = new Scratch(size);
  return sharedScratch;
}

function assertToken(token: unknown, nVocab: number, name: string): asserts token is number {
  if (typeof token !== "number" || !Number.isInteger(token) || token < 0 || token >= nVocab) {
    throw new ArgumentRangeError(`${name} must be a token id, an integer in [0, ${nVocab}); got ${String(token)}`);
  }
}

/** Penalties as llama.cpp's `llama_sampler_penalties_apply`, in float32 arithmetic like the C code. */
function applyPenalties(
  work: Float32Array,
  window: ArrayLike<number>,
  start: number,
  end: number,
  options: ResolvedSamplingOptions,
  scratch: Scratch,
): void {
  const { repeatPenalty, frequencyPenalty, presencePenalty } = options;
  if (repeatPenalty === 1 && frequencyPenalty === 0 && presencePenalty === 0) return;
  const counts = scratch.counts;
  const unique = scratch.unique;
  let nUnique = 0;
  for (let i = start; i < end; i++) {
    const token = window[i];
    if (counts[token]++ === 0) unique[nUnique++] = token;
  }
  const fround = Math.fround;
  for (let j = 0; j < nUnique; j++) {
    const token = unique[j];
    const count = counts[token];
    counts[token] = 0;
    let logit = work[token];
    logit = logit <= 0 ? fround(logit * repeatPenalty) : fround(logit / repeatPenalty);
    work[token] = logit - fround(fround(count * frequencyPenalty) + presencePenalty);
  }
}

/** Index of the highest logit (lowest id on ties); -1 when all are -Infinity. */
export function argmax(logits: Float32Array): number {
  let best = -1;
  let bestLogit = -Infinity;
  for (let id = 0; id < logits.length; id++) {
    const logit = logits[id];
    if (logit > bestLogit) {
      best = id;
      bestLogit = logit;
    } else if (logit !== logit) {
      throw new ArgumentRangeError(`logits[${id}] is NaN; logits must be finite or -Infinity (masked)`);
    }
  }
  if (bestLogit === Infinity) throw new ArgumentRangeError(`logits[${best}] is Infinity; logits must be finite or -Infinity (masked)`);
  return best;
}

/** A logit-bias map as two arrays, checked against the vocabulary once. */
export interface PreparedBias {
  readonly tokens: Int32Array;
  readonly values: Float64Array;
}

export function prepareBias(bias: ReadonlyMap<number, number> | undefined, nVocab: number): PreparedBias | undefined {
  if (bias === undefined || bias.size === 0) return undefined;
  const tokens = new Int32Array(bias.size);
  const values = new Float64Array(bias.size);
  let i = 0;
  for (const [token, value] of bias) {
    if (token >= nVocab) throw new ArgumentRangeError(`options.logitBias has token ${token}, outside the vocabulary [0, ${nVocab})`);
    tokens[i] = token;
    values[i] = value;
    i++;
  }
  return { tokens, values };
}

function nothingToSample(): RangeError {
  return new ArgumentRangeError("logits: every token is -Infinity (masked or banned); there is nothing to sample");
}

/**
 * Runs the chain on `logits` (not modified). `window[start..end)` are the tokens the penalties look at.
 * @internal
 */
export function runChain(
  logits: Float32Array,
  options: ResolvedSamplingOptions,
  window: ArrayLike<number>,
  start: number,
  end: number,
  random: RandomSource,
  scratch: Scratch,
  bias: PreparedBias | undefined,
): number {
  const nVocab = logits.length;
  let input = logits;
  const penalize = end > start && (options.repeatPenalty !== 1 || options.frequencyPenalty !== 0 || options.presencePenalty !== 0);
  if (bias !== undefined || penalize || options.sampler !== undefined) {
    input = scratch.work;
    input.set(logits);
    if (bias !== undefined) {
      for (let i = 0; i < bias.tokens.length; i++) input[bias.tokens[i]] += bias.values[i];
    }
    if (penalize) applyPenalties(input, window, start, end, options, scratch);
  }

  if (options.sampler !== undefined) return runCustom(logits, input, options, window, start, end, random);

  if (options.temperature === 0) {
    const best = argmax(input);
    if (best < 0) throw nothingToSample();
    return best;
  }

  const candidates = scratch.candidates;
  if (options.topK > 0 && options.topK < nVocab) candidates.loadTopK(input, options.topK);
  else candidates.loadAll(input);
  if (candidates.size === 0) throw nothingToSample();
  applyTopK(candidates, options.topK);
  applyTypicalP(candidates, options.typicalP);
  applyTopP(candidates, options.topP);
  applyMinP(candidates, options.minP);
  return candidates.draw(options.temperature, random);
}

function runCustom(
  original: Float32Array,
  adjusted: Float32Array,
  options: ResolvedSamplingOptions,
  window: ArrayLike<number>,
  start: number,
  end: number,
  random: RandomSource,
): number {
  const previousTokens: number[] = [];
  for (let i = start; i < end; i++) previousTokens.push(window[i]);
  const token = options.sampler!(adjusted, { previousTokens, random });
  const nVocab = original.length;
  if (typeof token !== "number" || !Number.isInteger(token) || token < 0 || token >= nVocab) {
    throw new ArgumentRangeError(`options.sampler returned ${String(token)}; it must return a token id, an integer in [0, ${nVocab})`);
  }
  if (original[token] === -Infinity || options.logitBias?.get(token) === -Infinity) {
    throw new ArgumentRangeError(`options.sampler returned token ${token}, which is masked or banned (logit -Infinity)`);
  }
  return token;
}

/**
 * Samples one token from `logits` with the options' chain. Pure apart from the generator: with `options.seed`
 * (and no `context.random`) the same inputs give the same token in every run and process.
 *
 * @example
 * ```ts
 * const token = sample(logits, { temperature: 0.7, topP: 0.9, seed: 42 }, { previousTokens: history });
 * ```
 * @throws TypeError for unknown option names or wrong types; RangeError for bad values or when every logit is
 *   -Infinity.
 */
export function sample(logits: Float32Array, options?: SamplingOptions, context: SampleContext = {}): number {
  checkLogits("logits", logits);
  const resolved = resolveSamplingOptions(options);
  if (context === null || typeof context !== "object") throw new ArgumentTypeError(`context must be an object; got ${describeValue(context)}`);
  assertKnownOptions(context, SAMPLE_CONTEXT_NAMES, "context");
  const previous = context.previousTokens ?? [];
  if (typeof previous !== "object" || typeof previous.length !== "number") {
    throw new ArgumentTypeError("context.previousTokens must be an array of token ids");
  }
  const start = Math.max(0, previous.length - resolved.penaltyLastN);
  for (let i = start; i < previous.length; i++) assertToken(previous[i], logits.length, `context.previousTokens[${i}]`);
  let random = context.random;
  if (random !== undefined && typeof random.nextFloat !== "function") {
    throw new ArgumentTypeError("context.random must have a nextFloat() method returning a number in [0, 1)");
  }
  random ??= createRandom(resolved.seed ?? randomSeed());
  const bias = prepareBias(resolved.logitBias, logits.length);
  return runChain(logits, resolved, previous, start, previous.length, random, scratchFor(logits.length), bias);
}

class ChainSampler implements Sampler {
  readonly options: ResolvedSamplingOptions;
  readonly seed: number;
  private random: SeededRandom;
  private scratch: Scratch | undefined;
  private bias: PreparedBias | undefined;
  /** Penalty window: the live tokens are history[historyStart, historyEnd). */
  private history: Int32Array;
  private historyStart = 0;
  private historyEnd = 0;
  private nVocab = 0;

  constructor(options: ResolvedSamplingOptions) {
    this.options = options;
    this.seed = options.seed ?? randomSeed();
    this.random = createRandom(this.seed);
    this.history = new Int32Array(Math.max(1, options.penaltyLastN) * 2);
  }

  sample(logits: Float32Array): number {
    checkLogits("logits", logits);
    if (this.scratch === undefined) {
      this.bias = prepareBias(this.options.logitBias, logits.length);
      this.scratch = new Scratch(logits.length);
      this.nVocab = logits.length;
    } else if (logits.length !== this.nVocab) {
      throw new ArgumentRangeError(`logits has length ${logits.length}; this sampler was first used with ${this.nVocab} (one vocabulary per sampler)`);
    }
    for (let i = this.historyStart; i < this.historyEnd; i++) {
      if (this.history[i] >= this.nVocab) throw new ArgumentRangeError(`accepted token ${this.history[i]} is outside the vocabulary [0, ${this.nVocab})`);
    }
    const token = runChain(logits, this.options, this.history, this.historyStart, this.historyEnd, this.random, this.scratch, this.bias);
    this.record(token);
    return token;
  }

  accept(tokens: number | ArrayLike<number>): void {
    const bound = this.nVocab > 0 ? this.nVocab : 2 ** 31;
    if (typeof tokens === "number") {
      assertToken(tokens, bound, "token");
      this.record(tokens);
      return;
    }
    if (tokens === null || typeof tokens !== "object" || typeof tokens.length !== "number") {
      throw new ArgumentTypeError("accept() takes a token id or an array of token ids");
    }
    for (let i = 0; i < tokens.length; i++) assertToken(tokens[i], bound, `tokens[${i}]`);
    for (let i = 0; i < tokens.length; i++) this.record(tokens[i]);
  }

  previousTokens(): number[] {
    return Array.from(this.history.subarray(this.historyStart, this.historyEnd));
  }

  reset(): void {
    this.historyStart = 0;
    this.historyEnd = 0;
    this.random = createRandom(this.seed);
  }

  private record(token: number): void {
    const capacity = this.options.penaltyLastN;
    if (capacity === 0) return;
    if (this.historyEnd === this.history.length) {
      // Slide the last `capacity - 1` tokens to the front: amortised O(1), no allocation.
      this.history.copyWithin(0, this.historyEnd - (capacity - 1), this.historyEnd);
      this.historyStart = 0;
      this.historyEnd = capacity - 1;
    }
    this.history[this.historyEnd++] = token;
    if (this.historyEnd - this.historyStart > capacity) this.historyStart++;
  }
}

/**
 * Creates a sampler for a generation loop. Options are validated once; scratch is allocated on the first call
 * and reused; the penalty window and the seeded generator carry across calls.
 *
 * @example
 * ```ts
 * const sampler = createSampler({ seed: 7, repeatPenalty: 1.1 });
 * const token = sampler.sample(logits);
 * ```
 */
export function createSampler(options?: SamplingOptions): Sampler {
  return new ChainSampler(resolveSamplingOptions(options));
}
