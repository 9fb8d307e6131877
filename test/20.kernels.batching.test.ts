import { describe, expect, it } from "vitest";

import { GGML_TYPE_TRAITS } from "../lib/gguf/types.js";
import { quantize } from "../lib/gguf/quantize.js";
import { kernelIsas, matmul, MATMUL_TYPES } from "../lib/kernels/testing.js";
import { gaussians, guarded } from "./helpers/kernels.js";

// Long enough to cross every summation span (4096 values) and the AVX2 decode's activation chunk (16384 values);
// float rows get an odd tail so the masked last step is exercised too.
const QUANT_N = 16384 + 4096 + 256;
const FLOAT_N = QUANT_N + 7;
// More than one AVX-512 prefill row block (64 rows) and not a multiple of any tile height.
const N_ROWS = 70;
const COLUMN_COUNTS = [2, 3, 5, 17, 64];
const MAX_COLUMNS = 64;

/** The index of the first value whose bits differ, or -1. */
function firstBitDifference(a: Float32Array, b: Float32Array): number {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  if (x.length !== y.length) return 0;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
  return -1;
}

describe("20 kernels: a matmul result does not depend on how the call was batched", () => {
  for (const isa of kernelIsas()) {
    for (const type of MATMUL_TYPES) {
      const name = GGML_TYPE_TRAITS[type].name;
      it(`${isa} ${name}: column c is bit-identical for nCols 1, ${COLUMN_COUNTS.join(", ")} and across row-range splits`, () => {
        const n = GGML_TYPE_TRAITS[type].blockSize === 1 ? FLOAT_N : QUANT_N;
        const weights = quantize(type, gaussians(N_ROWS * n, 31), n);
        const x = gaussians(MAX_COLUMNS * n, 32);
        // Each column alone: the decode path.
        const single = new Float32Array(MAX_COLUMNS * N_ROWS);
        for (let c = 0; c < MAX_COLUMNS; c++) {
          single.set(matmul(isa, type, weights, N_ROWS, n, x.subarray(c * n, (c + 1) * n), 1), c * N_ROWS);
        }
        for (const nCols of COLUMN_COUNTS) {
          const batched = matmul(isa, type, weights, N_ROWS, n, x.subarray(0, nCols * n), nCols);
          const at = firstBitDifference(single.subarray(0, nCols * N_ROWS), batched);
          expect(at, `${nCols} columns: column ${Math.floor(at / N_ROWS)} row ${at % N_ROWS} differs from the 1-column result`).toBe(-1);
        }
        // Rows split into ranges, as the engine's thread pool does, with 1 and 17 columns.
        for (const nCols of [1, 17]) {
          const out = guarded(nCols * N_ROWS);
          for (const [rowBegin, rowEnd] of [[0, 5], [5, 6], [6, 41], [41, 70]]) {
            matmul(isa, type, weights, N_ROWS, n, x.subarray(0, nCols * n), nCols, { rowBegin, rowEnd, out });
          }
          const at = firstBitDifference(single.subarray(0, nCols * N_ROWS), out.subarray(0, nCols * N_ROWS));
          expect(at, `${nCols} columns in row ranges: column ${Math.floor(at / N_ROWS)} row ${at % N_ROWS} differs`).toBe(-1);
        }
      });
    }
  }
});
