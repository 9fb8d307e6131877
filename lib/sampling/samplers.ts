/**
 * The built-in samplers as composable pure functions over a whole logits vector, for custom sampling loops.
 *
 * Each filter returns logits with the removed tokens set to -Infinity and leaves its input untouched; pass
 * `out` (which may be the input itself) to write into a buffer you own instead of allocating. They share the
 * implementation of {@link createSampler}'s chain, so composing them in llama.cpp's order gives the same
 * distribution as the chain.
 *
 * @example
 * ```ts
 * import { samplers, createRandom } from "mixtral-native";
 * const random = createRandom(1);
 * let l = samplers.logitBias(logits, new Map([[2, -Infinity]]));
 * l = samplers.topK(l, 40);
 * l = samplers.topP(l, 0.9);
 * const token = samplers.draw(samplers.temperature(l, 0.7), random);
 * ```
 * @module
 */
import { ArgumentRangeError, ArgumentTypeError } from "../errors.js";
import { applyMinP, applyTopK, applyTopP, applyTypicalP, type Candidates } from "./candidates.js";
import { assertLogitBias } from "./options.js";
import type { RandomSource } from "./random.js";
import { argmax, scratchFor } from "./sampler.js";
import { checkLogits } from "../validate.js";

/** Checks logits and returns where to write: `out` (of the same length) or a new array. */
function outputFor(logits: unknown, out: unknown): Float32Array {
  const checked = checkLogits("logits", logits);
  if (out === undefined) return new Float32Array(checked.length);
  if (!(out instanceof Float32Array) || out.length !== checked.length) {
    throw new ArgumentTypeError(`out must be a Float32Array of length ${checked.length}`);
  }
  return out;
}

function checkProbability(name: string, value: unknown): number {
  if (typeof value !== "number" || Number.isNaN(value) || value < 0 || value > 1) {
    throw new ArgumentRangeError(`${name} must be a number in [0, 1]; got ${String(value)}`);
  }
  return value;
}

function filter(logits: Float32Array, out: Float32Array | undefined, apply: (candidates: Candidates) => void): Float32Array {
  const target = outputFor(logits, out);
  const candidates = scratchFor(logits.length).candidates;
  candidates.loadAll(logits);
  apply(candidates);
  target.fill(-Infinity);
  for (let i = 0; i < candidates.size; i++) target[candidates.ids[i]] = candidates.logits[i];
  return target;
}

/** Keeps the k highest logits (ties: lower id first). k = 0 keeps everything. */
export function topK(logits: Float32Array, k: number, out?: Float32Array): Float32Array {
  if (!Number.isInteger(k) || k < 0) throw new ArgumentRangeError(`k must be an integer ≥ 0; got ${k}`);
  return filter(logits, out, (candidates) => applyTopK(candidates, k));
}

/** Nucleus: keeps the shortest highest-first prefix whose softmax mass reaches p. p = 1 keeps everything. */
export function topP(logits: Float32Array, p: number, out?: Float32Array): Float32Array {
  checkProbability("p", p);
  return filter(logits, out, (candidates) => applyTopP(candidates, p));
}

/** Keeps tokens whose probability is ≥ p × the highest probability. p = 0 keeps everything. */
export function minP(logits: Float32Array, p: number, out?: Float32Array): Float32Array {
  checkProbability("p", p);
  return filter(logits, out, (candidates) => applyMinP(candidates, p));
}

/** Locally typical sampling's filter. p = 1 keeps everything. */
export function typicalP(logits: Float32Array, p: number, out?: Float32Array): Float32Array {
  checkProbability("p", p);
  return filter(logits, out, (candidates) => applyTypicalP(candidates, p));
}

/** Divides the logits by t; t = 0 keeps only the highest logit (greedy), as llama.cpp's temperature sampler. */
export function temperature(logits: Float32Array, t: number, out?: Float32Array): Float32Array {
  if (typeof t !== "number" || !Number.isFinite(t) || t < 0) throw new ArgumentRangeError(`t must be a finite number ≥ 0; got ${t}`);
  const target = outputFor(logits, out);
  if (t === 0) {
    const best = argmax(logits);
    const bestLogit = best >= 0 ? logits[best] : -Infinity;
    target.fill(-Infinity);
    if (best >= 0) target[best] = bestLogit;
    return target;
  }
  for (let i = 0; i < logits.length; i++) target[i] = logits[i] / t;
  return target;
}

/** Adds `bias.get(token)` to each listed token's logit; -Infinity bans the token. */
export function logitBias(logits: Float32Array, bias: ReadonlyMap<number, number>, out?: Float32Array): Float32Array {
  const target = outputFor(logits, out);
  assertLogitBias(bias, "bias");
  if (target !== logits) target.set(logits);
  for (const [token, value] of bias) {
    if (token >= logits.length) throw new ArgumentRangeError(`bias has token ${token}, outside the vocabulary [0, ${logits.length})`);
    target[token] += value;
  }
  return target;
}

/**
 * Penalty strengths of {@link samplers.penalties}; the defaults (1, 0, 0) change nothing.
 * @example
 * ```ts
 * import { samplers, type PenaltyOptions } from "mixtral-native";
 * const penalty: PenaltyOptions = { repeatPenalty: 1.1, presencePenalty: 0.2 };
 * const adjusted = samplers.penalties(logits, session.tokens.slice(-64), penalty);
 * ```
 */
export interface PenaltyOptions {
  /** Divides positive (multiplies negative) logits of tokens seen. 1 = off. Finite, > 0. */
  repeatPenalty?: number;
  /** Subtracts count × this from each seen token's logit. 0 = off. */
  frequencyPenalty?: number;
  /** Subtracts this once from each seen token's logit. 0 = off. */
  presencePenalty?: number;
}

/**
 * llama.cpp's penalties over `previousTokens` (pass the last N yourself): for each distinct token with count c,
 * `logit = logit <= 0 ? logit * repeat : logit / repeat`, then `logit -= c * frequency + (c > 0) * presence`.
 */
export function penalties(logits: Float32Array, previousTokens: ArrayLike<number>, options: PenaltyOptions, out?: Float32Array): Float32Array {
  const target = outputFor(logits, out);
  const repeat = options.repeatPenalty ?? 1;
  const frequency = options.frequencyPenalty ?? 0;
  const presence = options.presencePenalty ?? 0;
  if (typeof repeat !== "number" || !Number.isFinite(repeat) || repeat <= 0) throw new ArgumentRangeError(`repeatPenalty must be a finite number > 0; got ${repeat}`);
  if (typeof frequency !== "number" || !Number.isFinite(frequency)) throw new ArgumentRangeError(`frequencyPenalty must be finite; got ${frequency}`);
  if (typeof presence !== "number" || !Number.isFinite(presence)) throw new ArgumentRangeError(`presencePenalty must be finite; got ${presence}`);
  const counts = new Map<number, number>();
  for (let i = 0; i < previousTokens.length; i++) {
    const token = previousTokens[i];
    if (!Number.isInteger(token) || token < 0 || token >= logits.length) {
      throw new ArgumentRangeError(`previousTokens[${i}] must be a token id in [0, ${logits.length}); got ${token}`);
    }
    counts.set(token, (counts.get(token) ?? 0) + 1);
  }
  if (target !== logits) target.set(logits);
  const fround = Math.fround;
  for (const [token, count] of counts) {
    let logit = target[token];
    logit = logit <= 0 ? fround(logit * repeat) : fround(logit / repeat);
    target[token] = logit - fround(fround(count * frequency) + presence);
  }
  return target;
}

/** The index of the highest logit (lowest id on ties); -1 if every logit is -Infinity. */
export function greedy(logits: Float32Array): number {
  checkLogits("logits", logits);
  return argmax(logits);
}

/** Probabilities softmax(logits); -Infinity gives 0. */
export function softmax(logits: Float32Array, out?: Float32Array): Float32Array {
  const target = outputFor(logits, out);
  const best = argmax(logits);
  if (best < 0) throw new ArgumentRangeError("logits: every token is -Infinity; softmax is undefined");
  const max = logits[best];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  for (let i = 0; i < logits.length; i++) target[i] = Math.exp(logits[i] - max) / sum;
  return target;
}

/** Draws a token from softmax(logits) with one number from `random` (temperature already applied). */
export function draw(logits: Float32Array, random: RandomSource): number {
  checkLogits("logits", logits);
  if (random === null || typeof random !== "object" || typeof random.nextFloat !== "function") {
    throw new ArgumentTypeError("random must have a nextFloat() method (see createRandom)");
  }
  const candidates = scratchFor(logits.length).candidates;
  candidates.loadAll(logits);
  if (candidates.size === 0) throw new ArgumentRangeError("logits: every token is -Infinity; there is nothing to sample");
  return candidates.draw(1, random);
}
