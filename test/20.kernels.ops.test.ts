import { describe, expect, it } from "vitest";

import { GgmlType } from "../lib/gguf/types.js";
import { quantize } from "../lib/gguf/quantize.js";
import {
  attnAccumulate,
  attnScores,
  axpy,
  dequantizeRow,
  rmsNorm,
  rope,
  siluMul,
  softmax,
  sumWords,
} from "../lib/kernels/testing.js";
import { expectClose, expectSentinels, FAST_ISAS, fromHalf, gaussians, guarded, nmse,
    toHalf } from "./helpers/kernels.js";

const DEFAULT_NMSE = 1e-7; // test-backend-ops: rope, rms_norm and the element-wise ops
const SOFTMAX_NMSE = 1e-6;
const LENGTHS = [1, 7, 15, 16, 17, 33, 100, 129, 4096, 14336 + 3];
const HEAD_DIMS = [64, 96, 128, 80, 6];

/** Words near 2^64, so their sums wrap many times. */
function wideWords(count: number): BigUint64Array {
  return BigUint64Array.from({ length: count }, (_, i) => BigInt.asUintN(64, BigInt(i + 1) * 0x9e3779b97f4a7c15n));
}

function wrappingSum(words: BigUint64Array, n: number): bigint {
  let sum = 0n;
  for (let i = 0; i < n; i++) sum += words[i];
  return BigInt.asUintN(64, sum);
}

function halves(values: Float32Array): Uint16Array {
  return Uint16Array.from(values, (v) => toHalf(v));
}

describe("20 kernels: norm, rope, attention, softmax, activations", () => {
  it("scalar sumWords is the wrapping 64-bit sum of the first n words", () => {
    const words = wideWords(1000);
    for (const n of [0, 1, 7, 8, 9, 1000]) expect(sumWords("scalar", words, n)).toBe(wrappingSum(words, n));
    expect(() => sumWords("scalar", words, 1001)).toThrow(/n must be in \[0, 1000\]; got 1001/);
  });

  it("scalar rmsNorm is x / sqrt(mean(x^2) + eps) * weight", () => {
    const x = gaussians(333, 1);
    const weight = gaussians(333, 2);
    let sum = 0;
    for (const v of x) sum += v * v;
    const scale = 1 / Math.sqrt(sum / x.length + 1e-5);
    const expected = Float64Array.from(x, (v, i) => v * scale * weight[i]);
    expect(nmse(expected, rmsNorm("scalar", x, weight, 1e-5))).toBeLessThanOrEqual(1e-12);
  });

  it("scalar rope rotates adjacent pairs (2i, 2i+1) by pos * base^(-2i/ropeDim), leaving dims past ropeDim alone",
      () => {
    const [nHeads, headDim, ropeDim, pos, base] = [3, 128, 96, 12345, 1e6];
    const x = gaussians(nHeads * headDim, 3);
    const actual = rope("scalar", Float32Array.from(x), nHeads, headDim, ropeDim, pos, base);
    const expected = Float64Array.from(x);
    for (let h = 0; h < nHeads; h++) {
      for (let i = 0; i < ropeDim / 2; i++) {
        const theta = pos * base ** ((-2 * i) / ropeDim);
        const [x0, x1] = [x[h * headDim + 2 * i], x[h * headDim + 2 * i + 1]];
        expected[h * headDim + 2 * i] = x0 * Math.cos(theta) - x1 * Math.sin(theta);
        expected[h * headDim + 2 * i + 1] = x0 * Math.sin(theta) + x1 * Math.cos(theta);
      }
    }
    expect(nmse(expected, actual)).toBeLessThanOrEqual(1e-13);
    for (let h = 0; h < nHeads; h++) {
      for (let d = ropeDim; d < headDim; d++) expect(actual[h * headDim + d]).toBe(x[h * headDim + d]);
    }
  });

  it("scalar softmax, siluMul and axpy follow their formulas", () => {
    const x = gaussians(50, 4, 3);
    const max = Math.max(...x);
    const exps = Array.from(x, (v) => Math.exp(v - max));
    const total = exps.reduce((a, b) => a + b, 0);
    expect(nmse(exps.map((e) => e / total), softmax("scalar", Float32Array.from(x)))).toBeLessThanOrEqual(1e-13);
    const up = gaussians(50, 5);
    expect(nmse(Array.from(x, (g, i) => (g / (1 + Math.exp(-g))) * up[i]), siluMul("scalar", Float32Array.from(x), up)))
      .toBeLessThanOrEqual(1e-13);
    expect(nmse(Array.from(x, (v, i) => v + 0.75 * up[i]), axpy("scalar", Float32Array.from(x), 0.75, up)))
      .toBeLessThanOrEqual(1e-13);
  });

  for (const isa of FAST_ISAS) {
    it(`${isa} rmsNorm matches scalar (NMSE <= ${DEFAULT_NMSE}) at odd lengths, zeros and huge values`, () => {
      for (const n of LENGTHS) {
        for (const [label, x] of [["gaussian", gaussians(n, n)], ["huge", gaussians(n, n + 1, 1e15)], ["zeros",
            new Float32Array(n)]] as const) {
          const weight = gaussians(n, n + 2);
          const expected = guarded(n);
          const actual = guarded(n);
          rmsNorm("scalar", x, weight, 1e-5, expected);
          rmsNorm(isa, x, weight, 1e-5, actual);
          expectSentinels(actual, n, `${isa} rmsNorm ${label} n=${n}`);
          expectClose(expected, actual, n, DEFAULT_NMSE, `${isa} rmsNorm ${label} n=${n}`);
        }
      }
    });

    it(`${isa} rope matches scalar (NMSE <= ${DEFAULT_NMSE}) for head dims 64/96/128/80/6, partial rotary dims and far positions`, () => {
      for (const headDim of HEAD_DIMS) {
        for (const ropeDim of [headDim, headDim - 2 * Math.floor(headDim / 8)]) {
          for (const pos of [0, 1, 4095, 32767, 500000]) {
            const nHeads = 5;
            const x = gaussians(nHeads * headDim, headDim + pos);
            const expected = guarded(nHeads * headDim, x);
            const actual = guarded(nHeads * headDim, x);
            rope("scalar", expected, nHeads, headDim, ropeDim, pos, 1e6);
            rope(isa, actual, nHeads, headDim, ropeDim, pos, 1e6);
            const label = `${isa} rope headDim ${headDim} ropeDim ${ropeDim} pos ${pos}`;
            expectSentinels(actual, nHeads * headDim, label);
            expectClose(expected, actual, nHeads * headDim, DEFAULT_NMSE, label);
          }
        }
      }
    });

    it(`${isa} attention scores match scalar over F16 and F32 caches (NMSE <= ${DEFAULT_NMSE})`, () => {
      for (const headDim of HEAD_DIMS) {
        for (const count of [1, 7, 33, 129]) {
          const q = gaussians(headDim, headDim * count);
          const keys = gaussians(count * headDim, headDim + count);
          for (const cache of [keys, halves(keys)]) {
            const expected = guarded(count);
            const actual = guarded(count);
            attnScores("scalar", q, cache, headDim, count, 1 / Math.sqrt(headDim), expected);
            attnScores(isa, q, cache, headDim, count, 1 / Math.sqrt(headDim), actual);
            const label = `${isa} attnScores ${cache instanceof Uint16Array ? "F16" : "F32"} headDim ${headDim} count ${count}`;
            expectSentinels(actual, count, label);
            expectClose(expected, actual, count, DEFAULT_NMSE, label);
          }
        }
      }
    });

    it(`${isa} attention over the query heads of one KV head matches scalar and equals one head at a time bit for bit`,
        () => {
      // 1-4 heads go through one pass; 5-8 take a second block. Decode and prefill both rely on a head's result not
      // depending on how many heads share its pass.
      for (const heads of [2, 3, 4, 5, 8]) {
        for (const headDim of [128, 80, 6]) {
          for (const count of [1, 33]) {
            const q = gaussians(heads * headDim, heads + headDim);
            const keys = gaussians(count * headDim, headDim - heads);
            const p = new Float32Array(heads * count);
            for (let h = 0; h < heads; h++) p.set(softmax("scalar", gaussians(count, h + count)), h * count);
            const start = gaussians(heads * headDim, count);
            for (const cache of [keys, halves(keys)]) {
              const label = `${isa} ${heads} heads ${cache instanceof Uint16Array ? "F16" : "F32"} headDim ${headDim} count ${count}`;
              const scores = guarded(heads * count);
              attnScores(isa, q, cache, headDim, count, 0.125, scores);
              expectSentinels(scores, heads * count, `attnScores ${label}`);
              expectClose(attnScores("scalar", q, cache, headDim, count, 0.125), scores, heads * count, DEFAULT_NMSE,
                `attnScores ${label}`);
              const out = guarded(heads * headDim, start);
              attnAccumulate(isa, out, p, cache, headDim, count, heads);
              expectSentinels(out, heads * headDim, `attnAccumulate ${label}`);
              const expected = attnAccumulate("scalar", start.slice(), p, cache, headDim, count, heads);
              expectClose(expected, out, heads * headDim, DEFAULT_NMSE, `attnAccumulate ${label}`);
              for (let h = 0; h < heads; h++) {
                const one = attnScores(isa, q.subarray(h * headDim, (h + 1) * headDim), cache, headDim, count, 0.125);
                expect(Array.from(scores.subarray(h * count, (h + 1) * count)), `attnScores ${label} head ${h}`)
                  .toEqual(Array.from(one));
                const alone = attnAccumulate(isa, start.slice(h * headDim, (h + 1) * headDim),
                  p.subarray(h * count, (h + 1) * count), cache, headDim, count);
                expect(Array.from(out.subarray(h * headDim, (h + 1) * headDim)), `attnAccumulate ${label} head ${h}`)
                  .toEqual(Array.from(alone));
              }
            }
          }
        }
      }
    });

    it(`${isa} attention accumulation matches scalar over F16 and F32 caches (NMSE <= ${DEFAULT_NMSE})`, () => {
      for (const headDim of [...HEAD_DIMS, 200]) {
        for (const count of [1, 7, 33, 129]) {
          const p = softmax("scalar", gaussians(count, count));
          const values = gaussians(count * headDim, headDim - count);
          const start = gaussians(headDim, headDim);
          for (const cache of [values, halves(values)]) {
            const expected = guarded(headDim, start);
            const actual = guarded(headDim, start);
            attnAccumulate("scalar", expected, p, cache, headDim, count);
            attnAccumulate(isa, actual, p, cache, headDim, count);
            const label = `${isa} attnAccumulate ${cache instanceof Uint16Array ? "F16" : "F32"} headDim ${headDim} count ${count}`;
            expectSentinels(actual, headDim, label);
            expectClose(expected, actual, headDim, DEFAULT_NMSE, label);
          }
        }
      }
    });

    it(`${isa} softmax matches scalar (NMSE <= ${SOFTMAX_NMSE}); all -inf but one gives exactly one-hot`, () => {
      for (const n of LENGTHS) {
        for (const [label, x] of [["gaussian", gaussians(n, n, 10)], ["all negative", gaussians(n, n + 1,
            30).map((v) => -Math.abs(v))],
          ["zeros", new Float32Array(n)]] as const) {
          const expected = guarded(n, x);
          const actual = guarded(n, x);
          softmax("scalar", expected, n);
          softmax(isa, actual, n);
          expectSentinels(actual, n, `${isa} softmax ${label} n=${n}`);
          expectClose(expected, actual, n, SOFTMAX_NMSE, `${isa} softmax ${label} n=${n}`);
        }
        const hot = Math.floor(n / 2);
        const masked = guarded(n, new Float32Array(n).fill(-Infinity).map((v, i) => (i === hot ? -3.5 : v)));
        softmax(isa, masked, n);
        expectSentinels(masked, n, `${isa} softmax -inf n=${n}`);
        expect(Array.from(masked.subarray(0, n))).toEqual(Array.from({ length: n }, (_, i) => (i === hot ? 1 : 0)));
      }
    });

    it(`${isa} siluMul and axpy match scalar (NMSE <= ${DEFAULT_NMSE}) at odd lengths and extreme inputs`, () => {
      for (const n of LENGTHS) {
        for (const [label, scale] of [["gaussian", 3], ["large", 200]] as const) {
          const gate = gaussians(n, n, scale);
          const up = gaussians(n, n + 1);
          const expected = guarded(n, gate);
          const actual = guarded(n, gate);
          siluMul("scalar", expected, up, n);
          siluMul(isa, actual, up, n);
          expectSentinels(actual, n, `${isa} siluMul ${label} n=${n}`);
          expectClose(expected, actual, n, DEFAULT_NMSE, `${isa} siluMul ${label} n=${n}`);

          const y = guarded(n, up);
          const yScalar = guarded(n, up);
          axpy("scalar", yScalar, -1.25, gate, n);
          axpy(isa, y, -1.25, gate, n);
          expectSentinels(y, n, `${isa} axpy n=${n}`);
          expectClose(yScalar, y, n, DEFAULT_NMSE, `${isa} axpy ${label} n=${n}`);
        }
      }
    });

    it(`${isa} sumWords is the wrapping 64-bit sum at every length 0..40 and 4099, reading no word past n`, () => {
      const words = wideWords(4099);
      for (const n of [...Array.from({ length: 41 }, (_, i) => i), 4099]) {
        expect(sumWords(isa, words, n)).toBe(wrappingSum(words, n));
      }
    });

    it(`${isa} dequantizeRow is bit-identical to scalar for every type it reads`, () => {
      for (const type of [GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0]) {
        const lengths = type === GgmlType.Q8_0 || type === GgmlType.Q4_0 ? [32, 96, 4096] : [1, 7, 17, 100, 4096];
        for (const n of lengths) {
          const row = quantize(type, gaussians(n, n, 5), n);
          const expected = guarded(n);
          const actual = guarded(n);
          dequantizeRow("scalar", type, row, n, expected);
          dequantizeRow(isa, type, row, n, actual);
          expectSentinels(actual, n, `${isa} dequantizeRow ${GgmlType[type]} n=${n}`);
          expect(Array.from(actual.subarray(0, n)), `${GgmlType[type]} n=${n}`).toEqual(Array.from(expected.subarray(0,
              n)));
        }
      }
    });
  }

  it("fp16 helpers used to build caches round-trip", () => {
    for (const v of [0, 1, -2.5, 65504, 6.1e-5,
        1e-7]) expect(Math.abs(fromHalf(toHalf(v)) - v)).toBeLessThanOrEqual(Math.abs(v) * 1e-3 + 1e-7);
  });

  it("rejects bad arguments with a RangeError or TypeError naming them", () => {
    const x = new Float32Array(8);
    expect(() => rmsNorm("scalar", x, new Float32Array(7), 1e-5)).toThrow(/weight must hold exactly 8/);
    expect(() => rmsNorm("scalar", x, x, Number.NaN)).toThrow(/eps must be a finite number/);
    expect(() => rope("scalar", x, 1, 8, 9, 0, 1e4)).toThrow(/ropeDim must be in/);
    expect(() => rope("scalar", x, 1, 8, 6, -1, 1e4)).toThrow(/pos must be in/);
    expect(() => rope("scalar", x, 2, 8, 8, 0, 1e4)).toThrow(/x must hold at least 16/);
    expect(() => attnScores("scalar", x, new Int16Array(16) as never, 8, 2, 1)).toThrow(/k must be a Uint16Array/);
    expect(() => attnAccumulate("scalar", x, new Float32Array(2), new Float32Array(15), 8,
        2)).toThrow(/v must hold exactly 16/);
    expect(() => attnScores("scalar", new Float32Array(12), new Float32Array(16), 8, 2, 1)).toThrow(
      /q must hold whole rows of headDim 8 values; got 12/);
    expect(() => attnAccumulate("scalar", x, new Float32Array(4), new Float32Array(16), 8, 2,
        2)).toThrow(/out must hold at least 16 values; got 8/);
    expect(() => attnAccumulate("scalar", x, new Float32Array(2), new Float32Array(16), 8, 2,
        0)).toThrow(/heads must be/);
    expect(() => softmax("scalar", x, 9)).toThrow(/n must be in \[1, 8\]/);
    expect(() => axpy("scalar", x, Number.POSITIVE_INFINITY, x)).toThrow(/a must be a finite number/);
  });
});
