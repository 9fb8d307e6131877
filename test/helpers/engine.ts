/**
 * Running the engine the way the correctness tests compare it: teacher-forced next-token distributions from
 * token-by-token eval, in float64 for the KL helpers.
 */
import { Mixtral, type LoadOptions } from "../../lib/model.js";
import type { SessionOptions } from "../../lib/session.js";
import { softmax } from "./distributions.js";

/** p(next | tokens[0..i]) for every i, one eval call per token. */
export async function engineDistributions(
  path: string,
  tokens: readonly number[],
  options: { load?: LoadOptions; session?: SessionOptions } = {},
): Promise<Float64Array[]> {
  const model = await Mixtral.load(path, options.load);
  try {
    const session = model.createSession(options.session);
    const distributions: Float64Array[] = [];
    for (const token of tokens) distributions.push(softmax(await session.eval([token])));
    return distributions;
  } finally {
    await model.dispose();
  }
}

/** The distribution after one batched eval of all `tokens`. */
export async function engineBatchedLast(path: string, tokens: readonly number[], options: { load?: LoadOptions; session?: SessionOptions } = {}): Promise<Float64Array> {
  const model = await Mixtral.load(path, options.load);
  try {
    return softmax(await model.createSession(options.session).eval(tokens));
  } finally {
    await model.dispose();
  }
}
