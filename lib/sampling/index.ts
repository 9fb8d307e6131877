/**
 * Sampling: the llama.cpp-order chain ({@link sample}, {@link createSampler}), the same steps as composable pure
 * functions ({@link samplers}), and a seeded generator ({@link createRandom}).
 * @module
 */
export { sample, createSampler, type Sampler, type SampleContext } from "./sampler.js";
export {
  SAMPLING_DEFAULTS,
  SAMPLING_OPTION_NAMES,
  assertKnownOptions,
  resolveSamplingOptions,
  type SamplingOptions,
  type ResolvedSamplingOptions,
  type CustomSampler,
  type CustomSamplerContext,
} from "./options.js";
export { createRandom, type RandomSource, type SeededRandom } from "./random.js";
export * as samplers from "./samplers.js";
export type { PenaltyOptions } from "./samplers.js";
