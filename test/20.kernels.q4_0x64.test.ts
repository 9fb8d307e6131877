// The Q4_0x64 kernels behind `weights: "repacked"` (issue 6's repacked-weights lever): the same dot products as the
// Q4_0 kernels with each block scaled once, decode and prefill in one order, so every ISA gives the scalar
// reference's bits at any batching and any row range.
import { describe, expect, it } from "vitest";

import { quantize } from "../lib/gguf/quantize.js";
import { GgmlType } from "../lib/gguf/types.js";
import { kernelIsas, matmul, q4_0x64Isas } from "../lib/kernels/testing.js";
import { expectClose, expectSentinels, gaussians, guarded } from "./helpers/kernels.js";

// An odd block count (the layout's lone last block), more than one decode activation chunk (512 blocks) and many
// prefill level chunks (32 blocks).
const N = 16384 + 4096 + 32;
// Three 64-row groups: twelve runs of 16 rows for the two-run prefill tile.
const N_ROWS = 192;
const COLUMN_COUNTS = [1, 2, 3, 5, 17, 64];
const MAX_COLUMNS = 64;
// One rounding per block instead of one per quarter block: the two orders agree to float rounding.
const ORDER_NMSE = 1e-12;

function firstBitDifference(a: Float32Array, b: Float32Array, length: number): number {
  const x = new Uint32Array(a.buffer, a.byteOffset, length);
  const y = new Uint32Array(b.buffer, b.byteOffset, length);
  for (let i = 0; i < length; i++) if (x[i] !== y[i]) return i;
  return -1;
}

describe("20 kernels: Q4_0x64 (repacked Q4_0)", () => {
  const weights = quantize(GgmlType.Q4_0, gaussians(N_ROWS * N, 41), N);
  const x = gaussians(MAX_COLUMNS * N, 42);

  it("the scalar and AVX-512 tables have the kernel and the AVX2 table does not", () => {
    expect(q4_0x64Isas()).toEqual(kernelIsas().filter((isa) => isa !== "avx2"));
  });

  it("the scalar Q4_0x64 matmul agrees with the scalar Q4_0 matmul to float rounding", () => {
    const repacked = matmul("scalar", GgmlType.Q4_0, weights, N_ROWS, N, x.subarray(0, 5 * N), 5, { repacked: true });
    const asFile = matmul("scalar", GgmlType.Q4_0, weights, N_ROWS, N, x.subarray(0, 5 * N), 5);
    expectClose(asFile, repacked, 5 * N_ROWS, ORDER_NMSE, "Q4_0x64 against Q4_0");
    let largestDifference = 0, largestValue = 0;
    for (let i = 0; i < 5 * N_ROWS; i++) {
      largestDifference = Math.max(largestDifference, Math.abs(repacked[i] - asFile[i]));
      largestValue = Math.max(largestValue, Math.abs(asFile[i]));
    }
    expect(largestDifference).toBeGreaterThan(0); // the orders do differ
    expect(largestDifference).toBeLessThan(1e-5 * largestValue);
  });

  for (const isa of q4_0x64Isas()) {
    it(`${isa}: every column count (${COLUMN_COUNTS.join(", ")}) and every row range gives the scalar reference's bits`, () => {
      const reference = matmul("scalar", GgmlType.Q4_0, weights, N_ROWS, N, x, MAX_COLUMNS, { repacked: true });
      for (const nCols of COLUMN_COUNTS) {
        const out = guarded(nCols * N_ROWS);
        matmul(isa, GgmlType.Q4_0, weights, N_ROWS, N, x.subarray(0, nCols * N), nCols, { repacked: true, out });
        const at = firstBitDifference(reference, out, nCols * N_ROWS);
        expect(at, `${nCols} columns: column ${Math.floor(at / N_ROWS)} row ${at % N_ROWS} differs`).toBe(-1);
        expectSentinels(out, nCols * N_ROWS, `${nCols} columns`);
      }
      // Row ranges that cut groups and runs of 16 rows, as the thread pool's chunks may.
      for (const nCols of [1, 17]) {
        const out = guarded(nCols * N_ROWS);
        for (const [rowBegin, rowEnd] of [[0, 5], [5, 6], [6, 41], [41, 64], [64, 100], [100, 192]]) {
          matmul(isa, GgmlType.Q4_0, weights, N_ROWS, N, x.subarray(0, nCols * N), nCols, { repacked: true, rowBegin, rowEnd, out });
        }
        const at = firstBitDifference(reference, out, nCols * N_ROWS);
        expect(at, `${nCols} columns in row ranges: column ${Math.floor(at / N_ROWS)} row ${at % N_ROWS} differs`).toBe(-1);
        expectSentinels(out, nCols * N_ROWS, `${nCols} columns in row ranges`);
      }
    });

    it(`${isa}: a row range writes only its own rows of each column, ldy apart`, () => {
      const nCols = 3, ldy = N_ROWS + 7;
      const out = guarded((nCols - 1) * ldy + N_ROWS);
      matmul(isa, GgmlType.Q4_0, weights, N_ROWS, N, x.subarray(0, nCols * N), nCols, { repacked: true, rowBegin: 13, rowEnd: 150, ldy, out });
      for (let c = 0; c < nCols; c++) {
        for (let r = 0; r < N_ROWS; r++) {
          const written = out[c * ldy + r] !== -987654.3125;
          expect(written, `column ${c} row ${r}`).toBe(r >= 13 && r < 150);
        }
      }
    });
  }

  it("refuses weights the layout cannot hold, naming the option", () => {
    const f16 = quantize(GgmlType.F16, gaussians(16 * 64, 1), 64);
    expect(() => matmul("scalar", GgmlType.F16, f16, 16, 64, gaussians(64, 2), 1, { repacked: true })).toThrow(/^options\.repacked needs Q4_0 weights; got F16/);
    const q4 = quantize(GgmlType.Q4_0, gaussians(8 * 64, 1), 64);
    expect(() => matmul("scalar", GgmlType.Q4_0, q4, 8, 64, gaussians(64, 2), 1, { repacked: true })).toThrow(/^options\.repacked needs nRows a multiple of 64; got 8/);
  });
});
