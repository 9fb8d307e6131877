import { describe, expect, it } from "vitest";

import { GGML_TYPE_TRAITS, GgmlType } from "../lib/gguf/types.js";
import { dequantize, quantize } from "../lib/gguf/quantize.js";
import { ActFormat, activationFormatFor, matmul, quantizeActivations, rowBytes } from "../lib/kernels/testing.js";
import { expectClose, expectSentinels, FAST_ISAS, gaussians, guarded, nmse, readActivations, seededRandom, SENTINEL,
    toHalf } from "./helpers/kernels.js";

const MUL_MAT_NMSE = 5e-4; // test-backend-ops' threshold for mul_mat
const BLOCK32_TYPES = [GgmlType.Q4_0, GgmlType.Q8_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1];
const K_TYPES = [GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K];
const QUANT_TYPES = [...BLOCK32_TYPES, ...K_TYPES];
const FLOAT_TYPES = [GgmlType.F32, GgmlType.F16, GgmlType.BF16];
const name = (type: GgmlType): string => GGML_TYPE_TRAITS[type].name;
const isK = (type: GgmlType): boolean => GGML_TYPE_TRAITS[type].blockSize === 256;

function weightsOf(type: GgmlType, nRows: number, n: number, seed: number, scale = 1): Uint8Array {
  return quantize(type, gaussians(nRows * n, seed, scale), n);
}

/** y[c * nRows + r] in float64 from dequantized weights and activations (what the scalar kernel approximates). */
function float64Matmul(type: GgmlType, weights: Uint8Array, nRows: number, n: number, x: Float32Array,
    nCols: number): Float64Array {
  const w = dequantize(type, weights, n);
  const format = activationFormatFor(type);
  const xs = Array.from({ length: nCols }, (_, c) => {
    const column = x.subarray(c * n, (c + 1) * n);
    return readActivations(format, quantizeActivations("scalar", format, column), n);
  });
  const y = new Float64Array(nCols * nRows);
  for (let c = 0; c < nCols; c++) {
    for (let r = 0; r < nRows; r++) {
      let sum = 0;
      for (let i = 0; i < n; i++) sum += w[r * n + i] * xs[c][i];
      y[c * nRows + r] = sum;
    }
  }
  return y;
}

/** Runs `isa`'s matmul into a sentinel-guarded output and checks nothing was written past it. */
function run(isa: Parameters<typeof matmul>[0], type: GgmlType, weights: Uint8Array, nRows: number, n: number,
  x: Float32Array, nCols: number): Float32Array {
  const out = guarded(nCols * nRows);
  matmul(isa, type, weights, nRows, n, x, nCols, { out });
  expectSentinels(out, nCols * nRows, `${isa} ${name(type)} ${nRows}x${n} @ ${nCols}`);
  return out.subarray(0, nCols * nRows);
}

describe("20 kernels: matmul", () => {
  for (const type of [...QUANT_TYPES, ...FLOAT_TYPES]) {
    it(`the scalar ${name(type)} matmul equals a float64 product of the dequantized weights and activations`,
        () => {
      const [nRows, n, nCols] = [9, isK(type) ? 768 : 160, 3];
      const weights = weightsOf(type, nRows, n, 11);
      const x = gaussians(nCols * n, 12);
      const expected = float64Matmul(type, weights, nRows, n, x, nCols);
      // Q8_1 keeps s = d * sum(q) as fp16, and the min term of Q4_1 / Q5_1 reads it: that rounding stays in.
      const exactness = activationFormatFor(type) === ActFormat.Q8_1 ? 1e-6 : 1e-10;
      expectClose(expected, run("scalar", type, weights, nRows, n, x, nCols), nCols * nRows, exactness, name(type));
      // and the activation quantization error stays within mul_mat's threshold of the unquantized product
      const exact = new Float64Array(nCols * nRows);
      const w = dequantize(type, weights, n);
      for (let c = 0; c < nCols; c++)
        for (let r = 0; r < nRows; r++)
          for (let i = 0; i < n; i++) exact[c * nRows + r] += w[r * n + i] * x[c * n + i];
      expect(nmse(exact, expected)).toBeLessThanOrEqual(MUL_MAT_NMSE);
    });
  }

  for (const isa of FAST_ISAS) {
    for (const type of [...QUANT_TYPES, ...FLOAT_TYPES]) {
      it(`${isa} ${name(type)} matmul matches scalar at odd row, column and row-length counts (NMSE <= ${MUL_MAT_NMSE}, sentinels intact)`, () => {
        const lengths = isK(type) ? [256, 768, 1280, 4352] : QUANT_TYPES.includes(type) ? [32, 96, 160, 1056, 1152]
          : [1, 7, 100, 257, 1056];
        let seed = 100;
        for (const n of lengths) {
          for (const nRows of [1, 7, 33, 129]) {
            const weights = weightsOf(type, nRows, n, seed++);
            for (const nCols of [1, 2, 3, 5, 17]) {
              if (nRows * n * nCols > 3e6) continue;
              const x = gaussians(nCols * n, seed++);
              const label = `${isa} ${name(type)} rows ${nRows} n ${n} cols ${nCols}`;
              expectClose(run("scalar", type, weights, nRows, n, x, nCols), run(isa, type, weights, nRows, n, x, nCols),
                nCols * nRows, MUL_MAT_NMSE, label);
            }
          }
        }
      });
    }

    for (const type of QUANT_TYPES) {
      it(`${isa} ${name(type)} matmul matches scalar on long rows (several activation chunks) and Mixtral's widths`, () => {
        for (const [nRows, n, nCols] of [[9, 4096, 1], [5, 4352, 6], [3, 20480, 1], [3, 20480, 2], [17, 14336, 1]]) {
          const weights = weightsOf(type, nRows, n, n + nCols);
          const x = gaussians(nCols * n, n - nCols);
          expectClose(run("scalar", type, weights, nRows, n, x, nCols), run(isa, type, weights, nRows, n, x, nCols),
            nCols * nRows, MUL_MAT_NMSE, `${isa} ${name(type)} rows ${nRows} n ${n} cols ${nCols}`);
        }
      });
    }

    if (isa === "avx2") {
      it("avx2 Q4_0 matmul gives the scalar reference's bits (each block fused into the sum in order, as llama.cpp adds it) at every row count, row range and column count", () => {
        // Rows 8 at a time: short groups of 1..7 rows, row ranges cutting groups, long rows over several chunks.
        for (const [nRows, n] of [[1, 32], [7, 96], [9, 160], [33, 1056], [21, 4096], [5, 20480]]) {
          const weights = weightsOf(GgmlType.Q4_0, nRows, n, nRows + n);
          for (const nCols of [1, 2, 3, 5]) {
            const x = gaussians(nCols * n, n - nCols, 4);
            const expected = run("scalar", GgmlType.Q4_0, weights, nRows, n, x, nCols);
            const out = guarded(nCols * nRows);
            for (let rowBegin = 0; rowBegin < nRows; rowBegin += 3) {
              matmul(isa, GgmlType.Q4_0, weights, nRows, n, x, nCols, { rowBegin, rowEnd: Math.min(nRows, rowBegin + 3), out });
            }
            expectSentinels(out, nCols * nRows, `rows ${nRows} n ${n} cols ${nCols}`);
            const whole = run(isa, GgmlType.Q4_0, weights, nRows, n, x, nCols);
            for (let i = 0; i < nCols * nRows; i++) {
              expect(Object.is(out[i], expected[i]) && Object.is(whole[i], expected[i]),
                `rows ${nRows} n ${n} cols ${nCols}: column ${Math.floor(i / nRows)} row ${i % nRows} is ${whole[i]} / ${out[i]}, scalar ${expected[i]}`).toBe(true);
            }
          }
        }
      });
    }

    it(`${isa} matmul writes only rows [rowBegin, rowEnd) of each column, ldy apart`, () => {
      for (const type of [GgmlType.Q4_0, GgmlType.Q8_0, GgmlType.F16, GgmlType.Q4_1, GgmlType.Q4_K, GgmlType.Q6_K]) {
        const [nRows, n, nCols, ldy] = [21, isK(type) ? 512 : 96, 5, 25];
        const weights = weightsOf(type, nRows, n, 7);
        const x = gaussians(nCols * n, 8);
        const full = run("scalar", type, weights, nRows, n, x, nCols);
        for (const [rowBegin, rowEnd] of [[0, 21], [3, 4], [5, 18], [20, 21], [7, 7]]) {
          const length = (nCols - 1) * ldy + nRows;
          const out = guarded(length);
          matmul(isa, type, weights, nRows, n, x, nCols, { rowBegin, rowEnd, ldy, out });
          expectSentinels(out, length, `${isa} rows [${rowBegin}, ${rowEnd})`);
          for (let c = 0; c < nCols; c++) {
            for (let r = 0; r < ldy && c * ldy + r < length; r++) {
              const value = out[c * ldy + r];
              if (r >= rowBegin && r < rowEnd) {
                expect(Math.abs(value - full[c * nRows + r]),
                    `c ${c} r ${r}`).toBeLessThanOrEqual(1e-3 * (1 + Math.abs(full[c * nRows + r])));
              } else {
                expect(value, `${GgmlType[type]} rows [${rowBegin}, ${rowEnd}) wrote c ${c} r ${r}`).toBe(SENTINEL);
              }
            }
          }
        }
      }
    });

    it(`${isa} matmul survives unlucky values: zeros, fp16-max scales, all-negative data`, () => {
      const [nRows, n, nCols] = [7, 160, 3];
      const random = seededRandom(99);
      // Raw blocks with the largest fp16 scale and random quants
      const huge = (type: GgmlType): Uint8Array => {
        const bytes = new Uint8Array(nRows * rowBytes(type, n));
        const blockBytes = type === GgmlType.Q4_0 ? 18 : 34;
        for (let b = 0; b < bytes.length / blockBytes; b++) {
          bytes[b * blockBytes] = 0xff;
          bytes[b * blockBytes + 1] = 0x7b; // 65504
          for (let j = 2; j < blockBytes; j++) bytes[b * blockBytes + j] = Math.floor(random() * 256);
        }
        return bytes;
      };
      const f16Max = new Uint8Array(new Uint16Array(nRows * n).map(() => toHalf((random() < 0.5 ? -1 : 1) * 65504)).buffer);
      const cases: Array<[string, GgmlType, Uint8Array, Float32Array]> = [
        ["zero weights", GgmlType.Q4_0, new Uint8Array(nRows * rowBytes(GgmlType.Q4_0, n)), gaussians(nCols * n, 1)],
        ["zero activations", GgmlType.Q8_0, weightsOf(GgmlType.Q8_0, nRows, n, 2), new Float32Array(nCols * n)],
        ["zero F32 activations", GgmlType.F32, weightsOf(GgmlType.F32, nRows, n, 2), new Float32Array(nCols * n)],
        ["Q4_0 fp16-max scales", GgmlType.Q4_0, huge(GgmlType.Q4_0), gaussians(nCols * n, 3, 0.01)],
        ["Q8_0 fp16-max scales", GgmlType.Q8_0, huge(GgmlType.Q8_0), gaussians(nCols * n, 4, 0.01)],
        ["F16 +-65504 weights", GgmlType.F16, f16Max, gaussians(nCols * n, 5, 0.01)],
        ["all negative Q4_0", GgmlType.Q4_0, quantize(GgmlType.Q4_0, gaussians(nRows * n,
            6).map((v) => -Math.abs(v) - 0.01), n),
          gaussians(nCols * n, 7).map((v) => -Math.abs(v) - 0.01)],
        ["all negative Q8_0", GgmlType.Q8_0, quantize(GgmlType.Q8_0, gaussians(nRows * n,
            8).map((v) => -Math.abs(v) - 0.01), n),
          gaussians(nCols * n, 9).map((v) => -Math.abs(v) - 0.01)],
      ];
      for (const [label, type, weights, x] of cases) {
        const expected = run("scalar", type, weights, nRows, n, x, nCols);
        const actual = run(isa, type, weights, nRows, n, x, nCols);
        expectClose(expected, actual, nCols * nRows, MUL_MAT_NMSE, `${isa} ${label}`);
        if (label.startsWith("zero")) expect(Array.from(actual).every((v) => v === 0), label).toBe(true);
        if (label.startsWith("all negative")) expect(Array.from(actual).every((v) => v > 0), label).toBe(true);
      }
    });

    it(`${isa} Q4_1, Q5_0, Q5_1 and K-quant matmuls survive zeros, fp16-max scales and all-negative data`, () => {
      // Offsets of the fp16 scale fields (d, dmin or m) in each block
      const scaleFields: Array<[GgmlType, number[]]> = [[GgmlType.Q4_1, [0, 2]], [GgmlType.Q5_0, [0]],
        [GgmlType.Q5_1, [0, 2]], [GgmlType.Q2_K, [80, 82]], [GgmlType.Q3_K, [108]], [GgmlType.Q4_K, [0, 2]],
        [GgmlType.Q5_K, [0, 2]], [GgmlType.Q6_K, [208]]];
      const random = seededRandom(77);
      for (const [type, fields] of scaleFields) {
        const [nRows, n, nCols] = [7, isK(type) ? 512 : 160, 3];
        const blockBytes = GGML_TYPE_TRAITS[type].blockBytes;
        const huge = new Uint8Array(nRows * rowBytes(type, n)).map(() => Math.floor(random() * 256));
        for (let b = 0; b < huge.length / blockBytes; b++) {
          for (const at of fields) {
            huge[b * blockBytes + at] = 0xff;
            huge[b * blockBytes + at + 1] = 0x7b; // 65504
          }
        }
        const negative = (count: number, seed: number) => gaussians(count, seed).map((v) => -Math.abs(v) - 0.01);
        const cases: Array<[string, Uint8Array, Float32Array]> = [
          ["zero weights", new Uint8Array(nRows * rowBytes(type, n)), gaussians(nCols * n, 1)],
          ["zero activations", weightsOf(type, nRows, n, 2), new Float32Array(nCols * n)],
          ["fp16-max scales", huge, gaussians(nCols * n, 3, 0.01)],
          ["all negative", quantize(type, negative(nRows * n, 4), n), negative(nCols * n, 5)],
        ];
        for (const [label, weights, x] of cases) {
          const expected = run("scalar", type, weights, nRows, n, x, nCols);
          const actual = run(isa, type, weights, nRows, n, x, nCols);
          expectClose(expected, actual, nCols * nRows, MUL_MAT_NMSE, `${isa} ${name(type)} ${label}`);
          if (label.startsWith("zero")) expect(Array.from(actual).every((v) => v === 0), `${name(type)} ${label}`).toBe(true);
          if (label === "all negative") expect(Array.from(actual).every((v) => v > 0), `${name(type)} ${label}`).toBe(true);
        }
      }
    });
  }

  it("rejects bad arguments with a RangeError or TypeError naming them", () => {
    const weights = new Uint8Array(2 * 18);
    const x = new Float32Array(32);
    expect(() => matmul("scalar", GgmlType.Q8_K, new Uint8Array(292), 1, 256, new Float32Array(256),
        1)).toThrow(/type must be one of/);
    expect(() => matmul("scalar", GgmlType.Q4_0, weights, 2, 48, x,
        1)).toThrow(/n must be a multiple of Q4_0's block size 32/);
    expect(() => matmul("scalar", GgmlType.Q4_0, weights, 3, 32, x, 1)).toThrow(/weights must hold exactly 54 bytes/);
    expect(() => matmul("scalar", GgmlType.Q4_0, weights, 2, 32, x, 2)).toThrow(/x must hold exactly 64 values/);
    expect(() => matmul("scalar", GgmlType.Q4_0, weights, 2, 32, x, 1, { rowEnd: 3 })).toThrow(/rowEnd must be in/);
    expect(() => matmul("scalar", GgmlType.Q4_0, weights, 2, 32, x, 1, { ldy: 1 })).toThrow(/ldy must be in/);
    expect(() => matmul("scalar", GgmlType.Q4_0, weights, 2, 32, x, 1,
        { out: new Float32Array(1) })).toThrow(/out must hold at least 2/);
    expect(() => matmul("scalar", GgmlType.Q4_0, weights, 2.5, 32, x, 1)).toThrow(TypeError);
    expect(() => matmul("sse9" as never, GgmlType.Q4_0, weights, 2, 32, x, 1)).toThrow(/isa must be/);
  });
});
