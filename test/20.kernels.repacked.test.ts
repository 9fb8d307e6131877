// The kernels behind `weights: "repacked"` (issue 6's repacked-weights lever), Q4_0 rows interleaved 128 at a time and
// Q4_K rows 64 at a time: the same dot products as the Q4_0 and Q4_K kernels with each block's terms added once, decode and prefill in
// one order, so every ISA gives the scalar reference's bits at any batching and any row range. The AVX2 prefill also
// copies rows as the file has them into such groups (Q4_0, Q4_K, Q6_K): the same bits as its decode.
import { describe, expect, it } from "vitest";

import { quantize } from "../lib/gguf/quantize.js";
import { GgmlType } from "../lib/gguf/types.js";
import { GGML_TYPE_TRAITS } from "../lib/gguf/types.js";
import { kernelIsas, matmul, repackedIsas } from "../lib/kernels/testing.js";
import { expectClose, expectSentinels, gaussians, guarded } from "./helpers/kernels.js";

// More than one decode activation chunk (512 Q4_0 blocks, 64 Q4_K super-blocks) and many prefill chunks.
const N = 16384 + 4096 + 256;
// Two Q4_0x128 groups, four Q4_Kx64 groups: sixteen runs of 16 rows for the prefill tiles.
const N_ROWS = 256;
const COLUMN_COUNTS = [1, 2, 3, 5, 17, 64];
const MAX_COLUMNS = 64;
// Q4_K's float terms are added in another order than the scalar and AVX-512 file-layout kernels': they agree to float
// rounding.
const ORDER_NMSE = 1e-12;
const TYPES = [GgmlType.Q4_0, GgmlType.Q4_K] as const;

function firstBitDifference(a: Float32Array, b: Float32Array, length: number): number {
  const x = new Uint32Array(a.buffer, a.byteOffset, length);
  const y = new Uint32Array(b.buffer, b.byteOffset, length);
  for (let i = 0; i < length; i++) if (x[i] !== y[i]) return i;
  return -1;
}

/**
 * Five columns of n values of +-1, which quantize to +-127: all 1, all -1, alternating, halves of each `block` values,
 * and pairs.
 */
function signPatterns(n: number, block: number): Float32Array {
  const x = new Float32Array(5 * n);
  for (let i = 0; i < n; i++) {
    x[i] = 1;
    x[n + i] = -1;
    x[2 * n + i] = i % 2 === 0 ? 1 : -1;
    x[3 * n + i] = i % block < block / 2 ? 1 : -1;
    x[4 * n + i] = i % 4 < 2 ? -1 : 1;
  }
  return x;
}

/** nCols columns of signPatterns(n, block), its five in turn */
function signColumns(n: number, block: number, nCols: number): Float32Array {
  const patterns = signPatterns(n, block);
  const x = new Float32Array(nCols * n);
  for (let c = 0; c < nCols; c++) x.set(patterns.subarray((c % 5) * n, (c % 5 + 1) * n), c * n);
  return x;
}

/**
 * The avx2 matmul of the first 1, 7, 70 and all nRows rows of `weights` with each of `columnCounts` columns of x, run
 * in row ranges of 41, gives `expected`'s bits (nRows a column) and writes nothing else.
 */
function expectFirstRowsInRanges(type: GgmlType, weights: Uint8Array, nRows: number, n: number, x: Float32Array,
  columnCounts: number[], expected: Float32Array): void {
  const rowBytes = weights.length / nRows;
  for (const rows of [1, 7, 70, nRows]) {
    for (const nCols of columnCounts) {
      const out = guarded(nCols * rows);
      for (let rowBegin = 0; rowBegin < rows; rowBegin += 41) {
        matmul("avx2", type, weights.subarray(0, rows * rowBytes), rows, n, x.subarray(0, nCols * n), nCols,
          { rowBegin, rowEnd: Math.min(rows, rowBegin + 41), out });
      }
      expectSentinels(out, nCols * rows, `${rows} rows, ${nCols} columns`);
      for (let c = 0; c < nCols; c++) {
        const at = firstBitDifference(expected.subarray(c * nRows, c * nRows + rows), out.subarray(c * rows), rows);
        expect(at, `${rows} rows, ${nCols} columns: column ${c} row ${at} differs`).toBe(-1);
      }
    }
  }
}

describe("20 kernels: Q4_0 rows interleaved 128 at a time and Q4_K rows 64 at a time", () => {
  const x = gaussians(MAX_COLUMNS * N, 42);

  it("every ISA's table has both layouts' kernels", () => {
    expect(repackedIsas(GgmlType.Q4_0)).toEqual(kernelIsas());
    expect(repackedIsas(GgmlType.Q4_K)).toEqual(kernelIsas());
  });

  for (const type of TYPES) {
    const name = GGML_TYPE_TRAITS[type].name;
    const weights = quantize(type, gaussians(N_ROWS * N, 41), N);

    if (type === GgmlType.Q4_0) {
      it("the scalar repacked Q4_0 matmul gives the scalar Q4_0 matmul's bits (both add each block as llama.cpp does)", () => {
        const repacked = matmul("scalar", type, weights, N_ROWS, N, x.subarray(0, 5 * N), 5, { repacked: true });
        const asFile = matmul("scalar", type, weights, N_ROWS, N, x.subarray(0, 5 * N), 5);
        const at = firstBitDifference(asFile, repacked, 5 * N_ROWS);
        expect(at, `column ${Math.floor(at / N_ROWS)} row ${at % N_ROWS} differs`).toBe(-1);
      });
    } else {
      it(`the scalar repacked ${name} matmul agrees with the scalar ${name} matmul to float rounding`, () => {
        const repacked = matmul("scalar", type, weights, N_ROWS, N, x.subarray(0, 5 * N), 5, { repacked: true });
        const asFile = matmul("scalar", type, weights, N_ROWS, N, x.subarray(0, 5 * N), 5);
        expectClose(asFile, repacked, 5 * N_ROWS, ORDER_NMSE, `repacked ${name} against ${name}`);
        let largestDifference = 0, largestValue = 0;
        for (let i = 0; i < 5 * N_ROWS; i++) {
          largestDifference = Math.max(largestDifference, Math.abs(repacked[i] - asFile[i]));
          largestValue = Math.max(largestValue, Math.abs(asFile[i]));
        }
        expect(largestDifference).toBeGreaterThan(0); // the orders do differ
        expect(largestDifference).toBeLessThan(1e-5 * largestValue);
      });
    }

    for (const isa of repackedIsas(type)) {
      it(`${isa} ${name}: every column count (${COLUMN_COUNTS.join(", ")}) and every row range gives the scalar reference's bits`, () => {
        const reference = matmul("scalar", type, weights, N_ROWS, N, x, MAX_COLUMNS, { repacked: true });
        for (const nCols of COLUMN_COUNTS) {
          const out = guarded(nCols * N_ROWS);
          matmul(isa, type, weights, N_ROWS, N, x.subarray(0, nCols * N), nCols, { repacked: true, out });
          const at = firstBitDifference(reference, out, nCols * N_ROWS);
          expect(at, `${nCols} columns: column ${Math.floor(at / N_ROWS)} row ${at % N_ROWS} differs`).toBe(-1);
          expectSentinels(out, nCols * N_ROWS, `${nCols} columns`);
        }
        // Row ranges that cut groups and runs of 16 rows, as the thread pool's chunks may.
        for (const nCols of [1, 17]) {
          const out = guarded(nCols * N_ROWS);
          for (const [rowBegin, rowEnd] of [[0, 5], [5, 6], [6, 41], [41, 64], [64, 100], [100, 192], [192, 256]]) {
            matmul(isa, type, weights, N_ROWS, N, x.subarray(0, nCols * N), nCols, { repacked: true, rowBegin, rowEnd, out });
          }
          const at = firstBitDifference(reference, out, nCols * N_ROWS);
          expect(at, `${nCols} columns in row ranges: column ${Math.floor(at / N_ROWS)} row ${at % N_ROWS} differs`).toBe(-1);
          expectSentinels(out, nCols * N_ROWS, `${nCols} columns in row ranges`);
        }
      });

      it(`${isa} ${name}: a row range writes only its own rows of each column, ldy apart`, () => {
        const nCols = 3, ldy = N_ROWS + 7;
        const out = guarded((nCols - 1) * ldy + N_ROWS);
        matmul(isa, type, weights, N_ROWS, N, x.subarray(0, nCols * N), nCols, { repacked: true, rowBegin: 13, rowEnd: 210, ldy, out });
        for (let c = 0; c < nCols; c++) {
          for (let r = 0; r < N_ROWS; r++) {
            const written = out[c * ldy + r] !== -987654.3125;
            expect(written, `column ${c} row ${r}`).toBe(r >= 13 && r < 210);
          }
        }
      });
    }

  }

  it("Q4_0 at the edges of the AVX2 kernels' i16 pair sums (levels 0 and 15 against activations of +-127) gives the scalar reference's bits, as the file has the rows and repacked", () => {
    // Each i16 of the prefill kernels starts at -8 times its activations' sum and adds (level * x) pairs: with every
    // level 0 and every x 127, or every level 15 and every x -127, its partial sums reach +-16256 and +-13335.
    const nRows = 128, n = 1024, nCols = 5;
    const weights = new Uint8Array(nRows * n / 32 * 18);
    const patterns = [0x00, 0xff, 0x0f, 0xf0];
    for (let b = 0; b < weights.length / 18; b++) {
      const row = Math.floor(b / (n / 32));
      weights[b * 18] = 0x00;
      weights[b * 18 + 1] = 0x3c; // d = 1
      weights.fill(patterns[row % 4], b * 18 + 2, b * 18 + 18);
    }
    const x = signPatterns(n, 32);
    const reference = matmul("scalar", GgmlType.Q4_0, weights, nRows, n, x, nCols);
    // level 0 against x = 1: (0 - 8) * 127 * d_x per value, d_x being 1 / 127 rounded to fp16
    expect(Math.abs(reference[0] + 8 * n)).toBeLessThan(1e-3 * 8 * n);
    for (const isa of kernelIsas()) {
      for (const repacked of repackedIsas(GgmlType.Q4_0).includes(isa) ? [false, true] : [false]) {
        const out = matmul(isa, GgmlType.Q4_0, weights, nRows, n, x, nCols, { repacked });
        const at = firstBitDifference(reference, out, nCols * nRows);
        expect(at, `${isa}${repacked ? " repacked" : ""}: column ${Math.floor(at / nRows)} row ${at % nRows} differs`).toBe(-1);
      }
    }
  });

  it("Q4_K at the edges of the AVX2 kernels' i16 pair sums (levels 15, scales and mins 63, activations of +-127) gives the scalar reference's bits, as the file has the rows and repacked", () => {
    // Each i16 of the AVX2 Q4_K prefill tile (16 or more columns) and of the repacked decode adds 16 products
    // level * x of one sub-block: with every level 15 and every x +-127 its partial sums reach +-30480, against a limit
    // of 32767.
    const nRows = 64, n = 1024, nCols = 17;
    const blockBytes = GGML_TYPE_TRAITS[GgmlType.Q4_K].blockBytes;
    const weights = new Uint8Array(nRows * n / 256 * blockBytes);
    const patterns = [0xff, 0xff, 0x0f, 0xf0];
    for (let b = 0; b < weights.length / blockBytes; b++) {
      const row = Math.floor(b / (n / 256)), at = b * blockBytes;
      weights.set([0x00, 0x3c, 0x00, 0x38], at); // d = 1, dmin = 0.5
      weights.fill(0xff, at + 4, at + 16); // every 6-bit scale and min 63
      weights.fill(patterns[row % 4], at + 16, at + blockBytes);
    }
    const x = signColumns(n, 64, nCols);
    const reference = matmul("scalar", GgmlType.Q4_K, weights, nRows, n, x, nCols, { repacked: true });
    // levels 15 against x = 1: (63 * 15 - 0.5 * 63) per value
    expect(Math.abs(reference[0] - (63 * 15 - 0.5 * 63) * n)).toBeLessThan(1e-2 * 63 * 15 * n);
    for (const isa of kernelIsas()) {
      for (const repacked of repackedIsas(GgmlType.Q4_K).includes(isa) ? [false, true] : [false]) {
        const out = matmul(isa, GgmlType.Q4_K, weights, nRows, n, x, nCols, { repacked });
        if (isa === "avx512" && !repacked) {
          expectClose(reference, out, nCols * nRows, ORDER_NMSE, "avx512 Q4_K as the file has it"); // its own order
          continue;
        }
        const at = firstBitDifference(reference, out, nCols * nRows);
        expect(at, `${isa}${repacked ? " repacked" : ""}: column ${Math.floor(at / nRows)} row ${at % nRows} differs`).toBe(-1);
        for (let c = 0; c < 5; c++) { // decode: each sign pattern alone
          const column = matmul(isa, GgmlType.Q4_K, weights, nRows, n, x.subarray(c * n, (c + 1) * n), 1, { repacked });
          const row = firstBitDifference(reference.subarray(c * nRows), column, nRows);
          expect(row, `${isa}${repacked ? " repacked" : ""} decode of column ${c}: row ${row} differs`).toBe(-1);
        }
      }
    }
  });

  if (kernelIsas().includes("avx2")) {
    it("avx2 Q4_K as the file has it gives the repacked scalar reference's bits at any row count, row range and column count (the AVX2 file-layout K-quant kernels add each super-block's exact sums as the Q4_Kx64 kernels do)", () => {
      const nRows = 320, n = 16384 + 4096 + 256; // a panel of 256 rows and a group of the next
      const weights = quantize(GgmlType.Q4_K, gaussians(nRows * n, 43), n);
      const x = gaussians(17 * n, 44);
      const reference = matmul("scalar", GgmlType.Q4_K, weights, nRows, n, x, 17, { repacked: true });
      expectFirstRowsInRanges(GgmlType.Q4_K, weights, nRows, n, x, [1, 2, 3, 5, 15, 16, 17], reference);
    });

    it("avx2 Q6_K prefill of 32 or more columns (rows copied 64 at a time, a level a byte) gives each column's 1-column bits at any row count and row range", () => {
      const nRows = 300, n = 4096 + 512; // a panel of 256 rows and part of the next
      const weights = quantize(GgmlType.Q6_K, gaussians(nRows * n, 45), n);
      const nCols = 33;
      const x = gaussians(nCols * n, 46);
      const single = new Float32Array(nCols * nRows);
      for (let c = 0; c < nCols; c++) single.set(matmul("avx2", GgmlType.Q6_K, weights, nRows, n, x.subarray(c * n, (c + 1) * n), 1), c * nRows);
      expectFirstRowsInRanges(GgmlType.Q6_K, weights, nRows, n, x, [32, 33], single);
    });

    it("Q6_K at the edges of the AVX2 prefill's i16 sums (levels 0 and 63, scales 127 and -128, activations of +-127) gives the 1-column bits", () => {
      // Each i16 of the AVX2 Q6_K tile holds 8 terms (level - 32) * x: with every level 0 and every x +-127 it reaches
      // +-32512, against a limit of 32767.
      const nRows = 64, n = 1024, nCols = 40;
      const blockBytes = GGML_TYPE_TRAITS[GgmlType.Q6_K].blockBytes;
      const weights = new Uint8Array(nRows * n / 256 * blockBytes);
      for (let b = 0; b < weights.length / blockBytes; b++) {
        const row = Math.floor(b / (n / 256)), at = b * blockBytes;
        weights.fill(row % 2 === 0 ? 0x00 : 0xff, at, at + 192); // levels 0 or 63
        weights.fill(row % 4 < 2 ? 127 : 128, at + 192, at + 208); // scales 127 or -128
        weights.set([0x00, 0x3c], at + 208); // d = 1
      }
      const x = signColumns(n, 64, nCols);
      const out = matmul("avx2", GgmlType.Q6_K, weights, nRows, n, x, nCols);
      // levels 0, scale 127 against x = 1: 127 * -32 per value
      expect(Math.abs(out[0] - 127 * -32 * n)).toBeLessThan(1e-3 * 127 * 32 * n);
      for (let c = 0; c < nCols; c++) {
        const single = matmul("avx2", GgmlType.Q6_K, weights, nRows, n, x.subarray(c * n, (c + 1) * n), 1);
        const at = firstBitDifference(single, out.subarray(c * nRows), nRows);
        expect(at, `column ${c} row ${at} differs`).toBe(-1);
      }
    });
  }

  it("refuses weights the layouts cannot hold, naming the option", () => {
    const f16 = quantize(GgmlType.F16, gaussians(16 * 64, 1), 64);
    expect(() => matmul("scalar", GgmlType.F16, f16, 16, 64, gaussians(64, 2), 1, { repacked: true })).toThrow(/^options\.repacked needs Q4_0 or Q4_K weights; got F16/);
    const q4_0 = quantize(GgmlType.Q4_0, gaussians(64 * 64, 1), 64);
    expect(() => matmul("scalar", GgmlType.Q4_0, q4_0, 64, 64, gaussians(64, 2), 1, { repacked: true })).toThrow(/^options\.repacked needs Q4_0 nRows a multiple of 128; got 64/);
    const q4_k = quantize(GgmlType.Q4_K, gaussians(8 * 256, 1), 256);
    expect(() => matmul("scalar", GgmlType.Q4_K, q4_k, 8, 256, gaussians(256, 2), 1, { repacked: true })).toThrow(/^options\.repacked needs Q4_K nRows a multiple of 64; got 8/);
  });
});
