/**
 * Sampling options: names, defaults (llama.cpp's), and validation at the edge.
 * @module
 */
import { ArgumentRangeError, ArgumentTypeError } from "../errors.js";
import type { RandomSource } from "./random.js";
import { assertSeed } from "./random.js";
import { assertKnownOptions, describeValue } from "../validate.js";

export { assertKnownOptions };

/**
 * What a custom `sampler` function receives besides the logits: the penalty window and the (seeded) generator.
 * @example
 * ```ts
 * import type { CustomSamplerContext } from "mixtral-native";
 * // Greedy, but never the same token twice in a row.
 * function noRepeat(logits: Float32Array, { previousTokens }: CustomSamplerContext): number {
 *   const last = previousTokens.at(-1);
 *   let best = last === 0 ? 1 : 0;
 *   for (let id = 0; id < logits.length; id++) if (id !== last && logits[id] > logits[best]) best = id;
 *   return best;
 * }
 * await chat.send("Count to ten.", { sampler: noRepeat });
 * ```
 */
export interface CustomSamplerContext {
  /** The tokens in the penalty window, oldest first (at most `penaltyLastN`; all given when penalties are off). */
  readonly previousTokens: readonly number[];
  /** Uniform floats in [0, 1); seeded when `seed` is given. */
  readonly random: RandomSource;
}

/**
 * A custom sampling function. It receives the logits after `logitBias` and the penalties (a copy; masked tokens
 * are -Infinity) and returns the chosen token id, an integer in [0, logits.length) whose logit is not -Infinity.
 * @example
 * ```ts
 * import { samplers, type CustomSampler } from "mixtral-native";
 * // Top-3 at temperature 0.5, drawn with the seeded generator.
 * const top3: CustomSampler = (logits, { random }) => samplers.draw(samplers.temperature(samplers.topK(logits, 3), 0.5), random);
 * const { text } = await chat.send("Name a fruit.", { sampler: top3, seed: 7 });
 * ```
 */
export type CustomSampler = (logits: Float32Array, context: CustomSamplerContext) => number;

/**
 * Options of {@link sample} and {@link createSampler}, and the sampling part of the options of
 * {@link Session.generate} and {@link Chat.send}. Every field is optional; the defaults are llama.cpp's
 * (`common_params_sampling`), listed in {@link SAMPLING_DEFAULTS}.
 * @example
 * ```ts
 * import { createSampler, type SamplingOptions } from "mixtral-native";
 * const creative: SamplingOptions = { temperature: 1.0, topP: 0.9, minP: 0.02, repeatPenalty: 1.1, seed: 12 };
 * const sampler = createSampler(creative);
 * const reply = await chat.send("Write a limerick.", { ...creative, maxTokens: 80 });
 * ```
 */
export interface SamplingOptions {
  /** Divides the logits before the final draw. 0 = greedy (argmax). Finite, ≥ 0. Default 0.8. */
  temperature?: number;
  /** Keep the K highest logits. 0 = off. Integer ≥ 0. Default 40. */
  topK?: number;
  /** Keep the smallest prefix (by probability) whose mass reaches P. 1 = off. In [0, 1]. Default 0.95. */
  topP?: number;
  /** Keep tokens with probability ≥ minP × the top probability. 0 = off. In [0, 1]. Default 0.05. */
  minP?: number;
  /** Locally typical sampling: keep the most typical tokens up to mass P. 1 = off. In [0, 1]. Default 1. */
  typicalP?: number;
  /** Divide positive (multiply negative) logits of tokens seen in the window. 1 = off. Finite, > 0. Default 1. */
  repeatPenalty?: number;
  /** Subtract count × this from the logit of each token seen in the window. 0 = off. Finite. Default 0. */
  frequencyPenalty?: number;
  /** Subtract this once from the logit of each token seen in the window. 0 = off. Finite. Default 0. */
  presencePenalty?: number;
  /** How many of the most recent tokens the penalties look at. 0 = penalties off. Integer ≥ 0. Default 64. */
  penaltyLastN?: number;
  /** Added to the logit of each token; -Infinity bans the token. Keys: token ids. Default none. */
  logitBias?: ReadonlyMap<number, number>;
  /** Makes sampling reproducible across runs and processes. Integer in [0, 2^53 - 1]. Default: random. */
  seed?: number;
  /** Replaces temperature/topK/topP/minP/typicalP with your own choice; its return value is validated. */
  sampler?: CustomSampler;
}

/**
 * The options with every default filled in (`seed` stays optional; `sampler` may be absent): what
 * {@link resolveSamplingOptions} returns and {@link Sampler.options} holds.
 * @example
 * ```ts
 * import { createSampler, type ResolvedSamplingOptions } from "mixtral-native";
 * const { temperature, topK, penaltyLastN }: ResolvedSamplingOptions = createSampler({ temperature: 0.5 }).options; // 0.5, 40, 64
 * ```
 */
export interface ResolvedSamplingOptions {
  readonly temperature: number;
  readonly topK: number;
  readonly topP: number;
  readonly minP: number;
  readonly typicalP: number;
  readonly repeatPenalty: number;
  readonly frequencyPenalty: number;
  readonly presencePenalty: number;
  readonly penaltyLastN: number;
  readonly logitBias: ReadonlyMap<number, number> | undefined;
  readonly seed: number | undefined;
  readonly sampler: CustomSampler | undefined;
}

/**
 * llama.cpp's defaults (common/common.h, `common_params_sampling`), which this library uses too.
 * @example
 * ```ts
 * import { SAMPLING_DEFAULTS } from "mixtral-native";
 * const cooler = { ...SAMPLING_DEFAULTS, temperature: SAMPLING_DEFAULTS.temperature / 2 }; // 0.4, the rest unchanged
 * const { text } = await chat.send("Summarise the plot of Hamlet.", cooler);
 * ```
 */
export const SAMPLING_DEFAULTS = Object.freeze({
  temperature: 0.8,
  topK: 40,
  topP: 0.95,
  minP: 0.05,
  typicalP: 1,
  repeatPenalty: 1,
  frequencyPenalty: 0,
  presencePenalty: 0,
  penaltyLastN: 64,
});

/**
 * Every option name {@link sample} and {@link createSampler} accept: for picking the sampling options out of a
 * larger settings object.
 * @example
 * ```ts
 * import { SAMPLING_OPTION_NAMES, type SamplingOptions } from "mixtral-native";
 * const settings: Record<string, unknown> = { temperature: 0.7, topK: 20, theme: "dark" };
 * const sampling = Object.fromEntries(Object.entries(settings).filter(([key]) => (SAMPLING_OPTION_NAMES as readonly string[]).includes(key))) as SamplingOptions;
 * ```
 */
export const SAMPLING_OPTION_NAMES: readonly (keyof SamplingOptions)[] = Object.freeze([
  "temperature",
  "topK",
  "topP",
  "minP",
  "typicalP",
  "repeatPenalty",
  "frequencyPenalty",
  "presencePenalty",
  "penaltyLastN",
  "logitBias",
  "seed",
  "sampler",
]);

/** The options a custom `sampler` replaces, so giving both is a mistake worth reporting. */
const CHOOSING_OPTIONS = ["temperature", "topK", "topP", "minP", "typicalP"] as const;


function finiteNumber(options: SamplingOptions, name: keyof SamplingOptions, fallback: number): number {
  const value = options[name];
  if (value === undefined) return fallback;
  if (typeof value !== "number") throw new ArgumentTypeError(`options.${name} must be a number; got ${describeValue(value)}`);
  if (!Number.isFinite(value)) throw new ArgumentRangeError(`options.${name} must be a finite number; got ${value}`);
  return value;
}

function inRange(name: string, value: number, low: number, high: number, detail: string): number {
  if (value < low || value > high) throw new ArgumentRangeError(`options.${name} must be ${detail}; got ${value}`);
  return value;
}

function integerAtLeastZero(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0) throw new ArgumentRangeError(`options.${name} must be an integer ≥ 0; got ${value}`);
  return value;
}

/**
 * Checks `options` and fills in the defaults. Throws TypeError for unknown names or wrong types and RangeError
 * (naming the option and the value) for NaN, infinite or out-of-range values. Use it to reject bad settings
 * (from a config file, a form) before a generation starts.
 * @example
 * ```ts
 * import { resolveSamplingOptions } from "mixtral-native";
 * resolveSamplingOptions({ temperature: 0 }).topK; // 40 (the default)
 * resolveSamplingOptions({ topP: 1.5 });           // RangeError: options.topP must be in [0, 1] (1 = off); got 1.5
 * ```
 */
export function resolveSamplingOptions(options: SamplingOptions | undefined = {}): ResolvedSamplingOptions {
  if (options === null || typeof options !== "object") {
    throw new ArgumentTypeError(`options must be an object; got ${describeValue(options)}`);
  }
  assertKnownOptions(options, SAMPLING_OPTION_NAMES, "options");

  const sampler = options.sampler;
  if (sampler !== undefined && typeof sampler !== "function") {
    throw new ArgumentTypeError(`options.sampler must be a function (logits, context) => token; got ${describeValue(sampler)}`);
  }
  if (sampler !== undefined) {
    const clashing = CHOOSING_OPTIONS.filter((name) => options[name] !== undefined);
    if (clashing.length > 0) {
      throw new ArgumentTypeError(`options.sampler replaces ${clashing.join(", ")}; give either the custom sampler or those options`);
    }
  }

  const temperature = finiteNumber(options, "temperature", SAMPLING_DEFAULTS.temperature);
  inRange("temperature", temperature, 0, Infinity, "≥ 0 (0 = greedy)");
  const topK = integerAtLeastZero("topK", finiteNumber(options, "topK", SAMPLING_DEFAULTS.topK));
  const topP = inRange("topP", finiteNumber(options, "topP", SAMPLING_DEFAULTS.topP), 0, 1, "in [0, 1] (1 = off)");
  const minP = inRange("minP", finiteNumber(options, "minP", SAMPLING_DEFAULTS.minP), 0, 1, "in [0, 1] (0 = off)");
  const typicalP = inRange("typicalP", finiteNumber(options, "typicalP", SAMPLING_DEFAULTS.typicalP), 0, 1, "in [0, 1] (1 = off)");
  const repeatPenalty = finiteNumber(options, "repeatPenalty", SAMPLING_DEFAULTS.repeatPenalty);
  if (repeatPenalty <= 0) throw new ArgumentRangeError(`options.repeatPenalty must be > 0 (1 = off); got ${repeatPenalty}`);
  const frequencyPenalty = finiteNumber(options, "frequencyPenalty", SAMPLING_DEFAULTS.frequencyPenalty);
  const presencePenalty = finiteNumber(options, "presencePenalty", SAMPLING_DEFAULTS.presencePenalty);
  const penaltyLastN = integerAtLeastZero("penaltyLastN", finiteNumber(options, "penaltyLastN", SAMPLING_DEFAULTS.penaltyLastN));

  const logitBias = options.logitBias;
  if (logitBias !== undefined) assertLogitBias(logitBias, "options.logitBias");

  if (options.seed !== undefined) assertSeed(options.seed, "options.seed");

  return Object.freeze({
    temperature,
    topK,
    topP,
    minP,
    typicalP,
    repeatPenalty,
    frequencyPenalty,
    presencePenalty,
    penaltyLastN,
    logitBias,
    seed: options.seed,
    sampler,
  });
}

/** Checks a logit-bias map: integer keys ≥ 0, values finite or -Infinity. Vocabulary bounds are checked per call. */
export function assertLogitBias(bias: unknown, name: string): asserts bias is ReadonlyMap<number, number> {
  if (!(bias instanceof Map)) {
    throw new ArgumentTypeError(`${name} must be a Map from token id to bias; got ${describeValue(bias)}`);
  }
  for (const [token, value] of bias) {
    if (typeof token !== "number" || !Number.isInteger(token) || token < 0) {
      throw new ArgumentRangeError(`${name} has a key that is not a token id (integer ≥ 0): ${String(token)}`);
    }
    if (typeof value !== "number" || Number.isNaN(value) || value === Infinity) {
      throw new ArgumentRangeError(`${name} for token ${token} must be a finite number or -Infinity; got ${String(value)}`);
    }
  }
}
