/**
 * Exact comparison of logit vectors with a short failure message: vitest's diff of two 32000-entry arrays takes
 * about a minute to print.
 */
import { expect } from "vitest";

/** "" when a and b hold the same numbers (Object.is per entry), else where and how they first differ. */
export function logitsDifference(a: ArrayLike<number>, b: ArrayLike<number>): string {
  if (a.length !== b.length) return `lengths ${a.length} and ${b.length}`;
  let count = 0;
  let first = -1;
  for (let i = 0; i < a.length; i++) {
    if (Object.is(a[i], b[i])) continue;
    if (first < 0) first = i;
    count++;
  }
  return first < 0 ? "" : `${count} of ${a.length} entries differ, the first at ${first}: ${a[first]} vs ${b[first]}`;
}

/** Asserts that `actual` equals `expected` bit for bit (a list of logit vectors, or one). */
export function expectSameLogits(actual: ArrayLike<number> | readonly ArrayLike<number>[], expected: ArrayLike<number> | readonly ArrayLike<number>[]): void {
  const toList = (x: ArrayLike<number> | readonly ArrayLike<number>[]) => (typeof x[0] === "number" ? [x as ArrayLike<number>] : (x as readonly ArrayLike<number>[]));
  const a = toList(actual), b = toList(expected);
  expect(a.length).toBe(b.length);
  a.forEach((logits, i) => expect(logitsDifference(logits, b[i]), `vector ${i}`).toBe(""));
}
