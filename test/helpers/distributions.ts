/**
 * Comparing next-token distributions: KL divergence, top-1 agreement, and the summary the correctness tests
 * assert on (thresholds: REFERENCE.md and issue 4, mean KL ≤ 1e-3 and top-1 agreement ≥ 97%).
 */

/**
 * KL(p ‖ q) = Σ p log(p / q) in nats, with p the reference. Terms with p = 0 add nothing; a q of 0 where p > 0
 * is taken as the smallest double, so a real mismatch shows as a large number instead of Infinity.
 */
export function klDivergence(p: ArrayLike<number>, q: ArrayLike<number>): number {
  if (p.length !== q.length) throw new RangeError(`p has ${p.length} entries but q has ${q.length}`);
  let sum = 0;
  for (let i = 0; i < p.length; i++) {
    const pi = p[i];
    if (pi > 0) sum += pi * Math.log(pi / (q[i] > 0 ? q[i] : Number.MIN_VALUE));
  }
  return sum;
}

/** Index of the largest entry (the first one on ties). */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/** softmax(logits) in float64. */
export function softmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  const out = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += out[i] = Math.exp(logits[i] - max);
  for (let i = 0; i < logits.length; i++) out[i] /= sum;
  return out;
}

export interface DistributionComparison {
  positions: number;
  /** Mean over positions of KL(expected ‖ actual). */
  meanKl: number;
  maxKl: number;
  /** Fraction of positions whose argmax agrees. */
  top1Agreement: number;
  /** Mean over positions of the expected distribution's largest probability. */
  meanTop1Probability: number;
}

/** Compares two lists of distributions position by position; `expected` is the reference (the oracle). */
export function compareDistributions(expected: readonly ArrayLike<number>[], actual: readonly ArrayLike<number>[]): DistributionComparison {
  if (expected.length !== actual.length || expected.length === 0) {
    throw new RangeError(`need the same positive number of distributions; got ${expected.length} and ${actual.length}`);
  }
  let klSum = 0, maxKl = 0, agree = 0, top1Sum = 0;
  for (let i = 0; i < expected.length; i++) {
    const kl = klDivergence(expected[i], actual[i]);
    klSum += kl;
    maxKl = Math.max(maxKl, kl);
    const top = argmax(expected[i]);
    if (top === argmax(actual[i])) agree++;
    top1Sum += expected[i][top];
  }
  const n = expected.length;
  return { positions: n, meanKl: klSum / n, maxKl, top1Agreement: agree / n, meanTop1Probability: top1Sum / n };
}
