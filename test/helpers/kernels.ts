/**
 * Shared pieces of the kernel tests (test/20.kernels.*): seeded data, llama.cpp's error metrics (REFERENCE.md
 * "How the reference tests kernels") and sentinel-guarded output arrays.
 */
import { expect } from "vitest";

import { ActFormat, kernelIsas } from "../../lib/kernels/testing.js";
import type { IsaName } from "../../lib/native.js";

/** The SIMD ISAs this CPU runs (each is held to "scalar"). */
export const FAST_ISAS: readonly IsaName[] = kernelIsas().filter((isa) => isa !== "scalar");

/** A seeded uniform generator in [0, 1) (mulberry32). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n standard-normal values (Box-Muller) from a seed. */
export function gaussians(n: number, seed: number, scale = 1): Float32Array {
  const random = seededRandom(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = random() || 1e-12;
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
  }
  return out;
}

/** llama.cpp's generate_data: 0.1 + 2 cos(i + offset). */
export function cosineData(n: number, offset = 0): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = 0.1 + 2 * Math.cos(i + offset);
  return out;
}

/** Normalised mean squared error sum((a - b)^2) / sum(a^2) of `actual` against `reference` (test-backend-ops). */
export function nmse(reference: ArrayLike<number>, actual: ArrayLike<number>, length = reference.length): number {
  let error = 0;
  let norm = 0;
  for (let i = 0; i < length; i++) {
    const d = reference[i] - actual[i];
    error += d * d;
    norm += reference[i] * reference[i];
  }
  return norm === 0 ? error : error / norm;
}

/** llama.cpp test-quantize-fns' array_rmse: sqrt(sum of squared differences) / n (not the usual RMSE). */
export function arrayRmse(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += (a[i] - b[i]) * (a[i] - b[i]);
  return Math.sqrt(sum) / a.length;
}

export function countNaN(values: ArrayLike<number>, length = values.length): number {
  let count = 0;
  for (let i = 0; i < length; i++) if (Number.isNaN(values[i])) count++;
  return count;
}

/** A value no kernel produces from the tests' data: marks slots a kernel must not write. */
export const SENTINEL = -987654.3125;
export const GUARD = 32;

/** A Float32Array of `length` values (copied from `init` when given) followed by GUARD sentinels. */
export function guarded(length: number, init?: ArrayLike<number>): Float32Array {
  const out = new Float32Array(length + GUARD).fill(SENTINEL);
  if (init) out.set(Array.from({ length }, (_, i) => init[i]));
  return out;
}

/** Asserts the GUARD sentinels after `length` values are untouched. */
export function expectSentinels(array: Float32Array, length: number, label: string): void {
  for (let i = length; i < array.length; i++) {
    if (array[i] !== SENTINEL) throw new Error(`${label}: value ${array[i]} written at ${i}, past the ${length} outputs`);
  }
}

/** Asserts `actual` matches `reference` within `threshold` NMSE with no NaN. */
export function expectClose(reference: ArrayLike<number>, actual: ArrayLike<number>, length: number, threshold: number,
  label: string): void {
  expect(countNaN(actual, length), `${label}: NaN outputs`).toBe(0);
  const error = nmse(reference, actual, length);
  expect(error, `${label}: NMSE ${error}`).toBeLessThanOrEqual(threshold);
}

/** IEEE fp16 bits of a float (round to nearest even), for building F16 caches and raw blocks. */
export function toHalf(value: number): number {
  const f32 = new Float32Array([value]);
  const bits = new Uint32Array(f32.buffer)[0];
  const sign = (bits >>> 16) & 0x8000;
  const abs = bits & 0x7fffffff;
  if (abs > 0x7f800000) return sign | 0x7e00;
  if (abs >= 0x477ff000) return sign | 0x7c00;
  if (abs < 0x38800000) return sign | Math.round(new Float32Array(new Uint32Array([abs]).buffer)[0] / 2 ** -24);
  let half = (abs >>> 13) - (112 << 10);
  const rest = abs & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++;
  return sign | half;
}

/** The float an fp16 bit pattern stands for. */
export function fromHalf(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 31) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/**
 * A quantized activation row read back field by field: Q8_0 {half d; i8 qs[32]}, Q8_1 {half d; half s; i8 qs[32]},
 * Q8_K {float d; i8 qs[256]; i16 bsums[16]}; F32/F16/BF16 as their values.
 */
export function readActivations(format: ActFormat, bytes: Uint8Array, n: number): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    switch (format) {
      case ActFormat.F32: out[i] = view.getFloat32(4 * i, true); break;
      case ActFormat.F16: out[i] = fromHalf(view.getUint16(2 * i, true)); break;
      case ActFormat.BF16: out[i] = new Float32Array(new Uint32Array([view.getUint16(2 * i, true) << 16]).buffer)[0]; break;
      case ActFormat.Q8_0: out[i] = view.getInt8(34 * (i >> 5) + 2 + (i & 31)) * fromHalf(view.getUint16(34 * (i >> 5), true)); break;
      case ActFormat.Q8_1: out[i] = view.getInt8(36 * (i >> 5) + 4 + (i & 31)) * fromHalf(view.getUint16(36 * (i >> 5), true)); break;
      case ActFormat.Q8_K: out[i] = view.getInt8(292 * (i >> 8) + 4 + (i & 255)) * view.getFloat32(292 * (i >> 8), true); break;
    }
  }
  return out;
}
