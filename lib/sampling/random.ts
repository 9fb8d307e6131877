/**
 * Seeded pseudo-random numbers for sampling.
 *
 * Algorithm: **xoshiro128\*\*** (Blackman & Vigna, 2018) over four 32-bit words, seeded by running
 * **SplitMix64** twice from the seed (Vigna's recommended seeding). Floats take 53 bits from two outputs.
 * Everything is integer arithmetic (`Math.imul`, shifts), so the same seed gives the same sequence on every
 * platform, process and Node version.
 *
 * @example
 * ```ts
 * const random = createRandom(42);
 * random.nextFloat(); // the same value in every run
 * ```
 * @module
 */

import { ArgumentRangeError } from "../errors.js";

/**
 * A source of uniform floats in [0, 1): what {@link samplers.draw} and a custom sampler draw with.
 * {@link createRandom} makes a seeded one; any object with `nextFloat` will do.
 * @example
 * ```ts
 * import { samplers, type RandomSource } from "mixtral-native";
 * const unseeded: RandomSource = { nextFloat: () => Math.random() };
 * const token = samplers.draw(logits, unseeded);
 * ```
 */
export interface RandomSource {
  nextFloat(): number;
}

/**
 * A seeded xoshiro128** generator: the same seed gives the same numbers on every platform and Node version.
 * Made by {@link createRandom}.
 * @example
 * ```ts
 * import { createRandom, type SeededRandom } from "mixtral-native";
 * const random: SeededRandom = createRandom(7);
 * const fork = random.clone(); // continues from the same point
 * random.nextFloat() === fork.nextFloat(); // true
 * ```
 */
export interface SeededRandom extends RandomSource {
  /** The seed it was created with. */
  readonly seed: number;
  /** The next 32-bit output as an unsigned integer. */
  nextUint32(): number;
  /** The next float in [0, 1) with 53 random bits. */
  nextFloat(): number;
  /** An independent copy that continues from the same point. */
  clone(): SeededRandom;
}

const MASK64 = (1n << 64n) - 1n;

/** One SplitMix64 step: returns [next state, output], both as unsigned 64-bit BigInts. */
function splitMix64(state: bigint): [bigint, bigint] {
  const next = (state + 0x9e3779b97f4a7c15n) & MASK64;
  let z = next;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return [next, z ^ (z >> 31n)];
}

class Xoshiro128StarStar implements SeededRandom {
  readonly seed: number;
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: number, words?: readonly [number, number, number, number]) {
    this.seed = seed;
    if (words) {
      [this.s0, this.s1, this.s2, this.s3] = words;
      return;
    }
    let state = BigInt(seed);
    let first: bigint;
    let second: bigint;
    [state, first] = splitMix64(state);
    [state, second] = splitMix64(state);
    this.s0 = Number(first & 0xffffffffn) | 0;
    this.s1 = Number(first >> 32n) | 0;
    this.s2 = Number(second & 0xffffffffn) | 0;
    this.s3 = Number(second >> 32n) | 0;
    // All-zero state is xoshiro's one fixed point; SplitMix64 never yields it for two consecutive outputs.
  }

  nextUint32(): number {
    const s1 = this.s1;
    const product = Math.imul(s1, 5);
    const result = Math.imul((product << 7) | (product >>> 25), 9);
    const shifted = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= shifted;
    this.s3 = (this.s3 << 11) | (this.s3 >>> 21);
    return result >>> 0;
  }

  nextFloat(): number {
    const high = this.nextUint32() >>> 5; // 27 bits
    const low = this.nextUint32() >>> 6; // 26 bits
    return (high * 67108864 + low) / 9007199254740992;
  }

  clone(): SeededRandom {
    return new Xoshiro128StarStar(this.seed, [this.s0, this.s1, this.s2, this.s3]);
  }
}

/**
 * Creates a seeded generator.
 *
 * @example
 * ```ts
 * const random = createRandom(Date.now());
 * const u = random.nextFloat(); // [0, 1)
 * ```
 * `seed` is any safe non-negative integer (e.g. `Date.now()` works).
 * @throws RangeError when `seed` is not an integer in [0, 2^53 - 1].
 */
export function createRandom(seed: number): SeededRandom {
  assertSeed(seed, "seed");
  return new Xoshiro128StarStar(seed);
}

/** @internal Validates a seed value; shared with the sampling options. */
export function assertSeed(seed: unknown, name: string): asserts seed is number {
  if (typeof seed !== "number" || !Number.isSafeInteger(seed) || seed < 0) {
    throw new ArgumentRangeError(`${name} must be an integer in [0, 2^53 - 1]; got ${String(seed)}`);
  }
}

/** @internal A fresh seed from the OS's cryptographic generator (used when no seed is given). */
export function randomSeed(): number {
  const words = new Uint32Array(2);
  globalThis.crypto.getRandomValues(words);
  return (words[0] & 0x1fffff) * 4294967296 + words[1];
}
