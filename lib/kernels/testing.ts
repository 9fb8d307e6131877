/**
 * Runs ONE chosen ISA's compute kernel on typed arrays: the scalar reference, AVX2 or AVX-512 (native/kernels). The
 * kernel tests hold every fast kernel to its scalar twin through these functions. Not exported from the package root.
 *
 * Every argument is checked here (the addon trusts its caller); bad ones throw TypeError or RangeError naming the
 * argument and value. Outputs are written into `out` when given (so a test can put sentinels after it), otherwise
 * into a new array; in-place kernels take an explicit length `n` for the same reason.
 *
 * @example
 * ```ts
 * const y = matmul("avx512", GgmlType.Q4_0, weights, 7, 64, x, 3); // 3 columns x 7 rows
 * ```
 * @internal
 * @module
 */
import { ArgumentRangeError, ArgumentTypeError } from "../errors.js";
import { native, type IsaName } from "../native.js";
import { GGML_TYPE_TRAITS, GgmlType } from "../gguf/types.js";

/** The form an activation row takes before it meets a weight type (native/kernels/kernels.h ActFormat). */
export enum ActFormat {
  F32 = 0,
  F16 = 1,
  BF16 = 2,
  Q8_0 = 3,
  Q8_1 = 4,
  Q8_K = 5,
}

/** Values per block of each activation format. */
const ACT_BLOCK_SIZE: Readonly<Record<ActFormat, number>> = {
  [ActFormat.F32]: 1,
  [ActFormat.F16]: 1,
  [ActFormat.BF16]: 1,
  [ActFormat.Q8_0]: 32,
  [ActFormat.Q8_1]: 32,
  [ActFormat.Q8_K]: 256,
};

/** Weight types matmul has kernels for. */
export const MATMUL_TYPES: readonly GgmlType[] = [GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0,
    GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K,
    GgmlType.Q5_K, GgmlType.Q6_K];
/** Types dequantizeRow reads. */
export const DEQUANTIZE_TYPES: readonly GgmlType[] = MATMUL_TYPES;

/** The kernel ISAs this CPU can run, scalar first. */
export function kernelIsas(): IsaName[] {
  return native().kernelIsas();
}

/** An ISA this CPU runs, or "active": the one the engine uses (the best one, capped by MIXTRAL_NATIVE_ISA). */
export type KernelIsa = IsaName | "active";

function checkIsa(isa: unknown): KernelIsa {
  const isas = kernelIsas();
  if (isa !== "active" && (typeof isa !== "string" || !isas.includes(isa as IsaName))) {
    throw new ArgumentRangeError(`isa must be "active" or one of ${isas.join(", ")} (the ISAs this CPU runs); got ${JSON.stringify(isa)}`, "ERR_INVALID_ARG_VALUE");
  }
  return isa as KernelIsa;
}

function checkInteger(name: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value)) {
    throw new ArgumentTypeError(`${name} must be an integer; got ${String(value)}`);
  }
  if (value < min || value > max) throw new ArgumentRangeError(`${name} must be in [${min}, ${max}]; got ${value}`);
  return value;
}

function checkFinite(name: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isFinite(value)) throw new ArgumentTypeError(`${name} must be a finite number; got ${String(value)}`);
  return value;
}

function checkMultiple(name: string, value: number, blockSize: number, what: string): void {
  if (value % blockSize !== 0) throw new ArgumentRangeError(`${name} must be a multiple of ${what}'s block size ${blockSize}; got ${value}`);
}

function checkFloats(name: string, value: unknown, minLength: number, exact = false): Float32Array {
  if (!(value instanceof Float32Array)) throw new ArgumentTypeError(`${name} must be a Float32Array`);
  if (exact ? value.length !== minLength : value.length < minLength) {
    throw new ArgumentRangeError(`${name} must hold ${exact ? "exactly" : "at least"} ${minLength} values; got ${value.length}`);
  }
  return value;
}

function checkBytes(name: string, value: unknown, length: number): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new ArgumentTypeError(`${name} must be a Uint8Array`);
  if (value.byteLength !== length) throw new ArgumentRangeError(`${name} must hold exactly ${length} bytes; got ${value.byteLength}`);
  return value;
}

function checkCache(name: string, value: unknown, length: number): Uint16Array | Float32Array {
  if (!(value instanceof Uint16Array) && !(value instanceof Float32Array)) {
    throw new ArgumentTypeError(`${name} must be a Uint16Array (F16 cache) or a Float32Array (F32 cache)`);
  }
  if (value.length !== length) throw new ArgumentRangeError(`${name} must hold exactly ${length} values; got ${value.length}`);
  return value;
}

function checkType(name: string, type: unknown, allowed: readonly GgmlType[]): GgmlType {
  if (!allowed.includes(type as GgmlType)) {
    const names = allowed.map((t) => GGML_TYPE_TRAITS[t].name).join(", ");
    throw new ArgumentRangeError(`${name} must be one of ${names}; got ${String(type)}`, "ERR_INVALID_ARG_VALUE");
  }
  return type as GgmlType;
}

/** Bytes of one row of n values of a ggml type. */
export function rowBytes(type: GgmlType, n: number): number {
  const traits = GGML_TYPE_TRAITS[type];
  return (n / traits.blockSize) * traits.blockBytes;
}

/** Bytes of one activation row of n values in `format` (native activationRowBytes). */
export function activationRowBytes(format: ActFormat, n: number): number {
  if (!(format in ACT_BLOCK_SIZE)) throw new ArgumentRangeError(`format must be an ActFormat; got ${String(format)}`, "ERR_INVALID_ARG_VALUE");
  checkInteger("n", n, 1);
  checkMultiple("n", n, ACT_BLOCK_SIZE[format], ActFormat[format]);
  return native().kernelTesting.activationRowBytes(format, n);
}

/** The activation format matmul quantizes x to for a weight type (native activationFormatFor). */
export function activationFormatFor(type: GgmlType): ActFormat {
  if (GGML_TYPE_TRAITS[type] === undefined) throw new ArgumentRangeError(`type must be a GgmlType; got ${String(type)}`, "ERR_INVALID_ARG_VALUE");
  return native().kernelTesting.activationFormatFor(type) as ActFormat;
}

/** Whether matmul has kernels for a weight type (native isMatmulSupported). */
export function isMatmulSupported(type: GgmlType): boolean {
  if (GGML_TYPE_TRAITS[type] === undefined) throw new ArgumentRangeError(`type must be a GgmlType; got ${String(type)}`, "ERR_INVALID_ARG_VALUE");
  return native().kernelTesting.isMatmulSupported(type);
}

export interface MatmulOptions {
  /** First weight row computed (default 0). */
  rowBegin?: number;
  /** One past the last weight row computed (default nRows). */
  rowEnd?: number;
  /** Distance between output columns (default nRows). */
  ldy?: number;
  /** Where to write; at least (nCols - 1) * ldy + nRows values. */
  out?: Float32Array;
  /**
   * Repack Q4_0 weights (nRows a multiple of 128) or Q4_K weights (a multiple of 64) into their interleaved layout
   * first (Q4_0x128, Q4_Kx64) and multiply with its kernel, as a model loaded with `weights: "repacked"` does (default
   * false). Only ISAs in {@link repackedIsas} of the type.
   */
  repacked?: boolean;
}

/** The kernel ISAs this CPU runs that have kernels for `type`'s repacked rows (Q4_0 or Q4_K; scalar first). */
export function repackedIsas(type: GgmlType): IsaName[] {
  return kernelIsas().filter((isa) => native().kernelTesting.hasRepackedKernels(isa, type));
}

/**
 * `W (nRows, n) @ X (nCols, n)`: `out[c * ldy + r]` = row r of the weights (nRows rows of `type`) . column c of x,
 * for r in [rowBegin, rowEnd). x is quantized with the same ISA's activation quantizer first.
 */
export function matmul(isa: KernelIsa, type: GgmlType, weights: Uint8Array, nRows: number, n: number, x: Float32Array,
  nCols: number, options: MatmulOptions = {}): Float32Array {
  checkIsa(isa);
  checkType("type", type, MATMUL_TYPES);
  checkInteger("nRows", nRows, 1);
  checkInteger("n", n, 1);
  checkMultiple("n", n, GGML_TYPE_TRAITS[type].blockSize, GGML_TYPE_TRAITS[type].name);
  checkInteger("nCols", nCols, 1);
  checkBytes("weights", weights, nRows * rowBytes(type, n));
  checkFloats("x", x, nCols * n, true);
  const rowBegin = checkInteger("rowBegin", options.rowBegin ?? 0, 0, nRows);
  const rowEnd = checkInteger("rowEnd", options.rowEnd ?? nRows, rowBegin, nRows);
  const ldy = checkInteger("ldy", options.ldy ?? nRows, nRows);
  const needed = (nCols - 1) * ldy + nRows;
  const out = options.out === undefined ? new Float32Array(needed) : checkFloats("out", options.out, needed);
  const repacked = options.repacked ?? false;
  if (repacked) {
    const groupRows = native().kernelTesting.interleavedGroupRows(type);
    if (groupRows === 0) throw new ArgumentRangeError(`options.repacked needs Q4_0 or Q4_K weights; got ${GGML_TYPE_TRAITS[type].name}`);
    if (nRows % groupRows !== 0) throw new ArgumentRangeError(`options.repacked needs ${GGML_TYPE_TRAITS[type].name} nRows a multiple of ${groupRows}; got ${nRows}`);
    const isas = repackedIsas(type);
    if (isa !== "active" && !isas.includes(isa)) throw new ArgumentRangeError(`options.repacked needs an ISA with kernels for repacked ${GGML_TYPE_TRAITS[type].name} rows (${isas.join(", ")}); got ${isa}`);
  }
  native().kernelTesting.matmul(isa, type, weights, n, x, nCols, rowBegin, rowEnd, out, ldy, repacked);
  return out;
}

/** x (n,) -> one activation row in `format`, written to `out` (at least activationRowBytes(format, n) bytes). */
export function quantizeActivations(isa: KernelIsa, format: ActFormat, x: Float32Array, out?: Uint8Array): Uint8Array {
  checkIsa(isa);
  checkFloats("x", x, 1);
  const bytes = activationRowBytes(format, x.length);
  let target = out;
  if (target === undefined) {
    target = new Uint8Array(bytes);
  } else if (!(target instanceof Uint8Array) || target.byteLength < bytes) {
    throw new ArgumentRangeError(`out must be a Uint8Array of at least ${bytes} bytes`);
  }
  native().kernelTesting.quantizeActivations(isa, format, x, target);
  return target;
}

/** One row of n values of `type` -> floats in `out` (at least n values). */
export function dequantizeRow(isa: KernelIsa, type: GgmlType, row: Uint8Array, n: number,
    out?: Float32Array): Float32Array {
  checkIsa(isa);
  checkType("type", type, DEQUANTIZE_TYPES);
  checkInteger("n", n, 1);
  checkMultiple("n", n, GGML_TYPE_TRAITS[type].blockSize, GGML_TYPE_TRAITS[type].name);
  checkBytes("row", row, rowBytes(type, n));
  const target = out === undefined ? new Float32Array(n) : checkFloats("out", out, n);
  native().kernelTesting.dequantizeRow(isa, type, row, n, target);
  return target;
}

/** out (n,) = x (n,) / sqrt(mean(x^2) + eps) * weight (n,) */
export function rmsNorm(isa: KernelIsa, x: Float32Array, weight: Float32Array, eps: number,
    out?: Float32Array): Float32Array {
  checkIsa(isa);
  checkFloats("x", x, 1);
  checkFloats("weight", weight, x.length, true);
  if (checkFinite("eps", eps) < 0) throw new ArgumentRangeError(`eps must be >= 0; got ${eps}`);
  const target = out === undefined ? new Float32Array(x.length) : checkFloats("out", out, x.length);
  native().kernelTesting.rmsNorm(isa, x, weight, eps, target);
  return target;
}

/** Adjacent-pair RoPE in place on the first nHeads * headDim values of x. */
export function rope(isa: KernelIsa, x: Float32Array, nHeads: number, headDim: number, ropeDim: number, pos: number,
  freqBase: number): Float32Array {
  checkIsa(isa);
  checkInteger("nHeads", nHeads, 1);
  checkInteger("headDim", headDim, 2);
  checkInteger("ropeDim", ropeDim, 2, headDim);
  if (ropeDim % 2 !== 0) throw new ArgumentRangeError(`ropeDim must be even; got ${ropeDim}`);
  checkInteger("pos", pos, 0);
  if (checkFinite("freqBase", freqBase) <= 0) throw new ArgumentRangeError(`freqBase must be > 0; got ${freqBase}`);
  checkFloats("x", x, nHeads * headDim);
  native().kernelTesting.rope(isa, x, nHeads, headDim, ropeDim, pos, freqBase);
  return x;
}

/**
 * out (heads, count) = scale * q (heads, headDim) @ K (count, headDim)ᵀ: the query heads that share one KV head, in
 * one pass over its keys; heads = q.length / headDim. K is an F16 (Uint16Array) or F32 cache.
 */
export function attnScores(isa: KernelIsa, q: Float32Array, k: Uint16Array | Float32Array, headDim: number,
  count: number, scale: number, out?: Float32Array): Float32Array {
  checkIsa(isa);
  checkInteger("headDim", headDim, 1);
  checkInteger("count", count, 0);
  const heads = checkHeads("q", q, headDim);
  checkCache("k", k, count * headDim);
  checkFinite("scale", scale);
  const target = out === undefined ? new Float32Array(heads * count) : checkFloats("out", out, heads * count);
  native().kernelTesting.attnScores(isa, q, k, headDim, count, scale, target);
  return target;
}

/**
 * out (heads, headDim) += p (heads, count) @ V (count, headDim), in place: the query heads that share one KV head, in
 * one pass over its values. V is an F16 (Uint16Array) or F32 cache.
 */
export function attnAccumulate(isa: KernelIsa, out: Float32Array, p: Float32Array, v: Uint16Array | Float32Array,
  headDim: number, count: number, heads = 1): Float32Array {
  checkIsa(isa);
  checkInteger("headDim", headDim, 1);
  checkInteger("count", count, 0);
  checkInteger("heads", heads, 1);
  checkFloats("out", out, heads * headDim);
  checkFloats("p", p, heads * count, true);
  checkCache("v", v, count * headDim);
  native().kernelTesting.attnAccumulate(isa, out, p, v, headDim, count, heads);
  return out;
}

/** Rows of headDim in x (a Float32Array of one or more whole rows). */
function checkHeads(name: string, x: unknown, headDim: number): number {
  checkFloats(name, x, headDim);
  const rows = (x as Float32Array).length / headDim;
  if (!Number.isInteger(rows)) {
    throw new ArgumentRangeError(`${name} must hold whole rows of headDim ${headDim} values; got ${(x as Float32Array).length}`);
  }
  return rows;
}

function checkLength(x: Float32Array, n: number | undefined): number {
  return n === undefined ? x.length : checkInteger("n", n, 1, x.length);
}

/** Softmax in place over the first n (default all) values of x. */
export function softmax(isa: KernelIsa, x: Float32Array, n?: number): Float32Array {
  checkIsa(isa);
  checkFloats("x", x, 1);
  native().kernelTesting.softmax(isa, x, checkLength(x, n));
  return x;
}

/** gate <- silu(gate) * up over the first n (default all) values, in place. */
export function siluMul(isa: KernelIsa, gate: Float32Array, up: Float32Array, n?: number): Float32Array {
  checkIsa(isa);
  checkFloats("gate", gate, 1);
  const length = checkLength(gate, n);
  checkFloats("up", up, length, true);
  native().kernelTesting.siluMul(isa, gate, up, length);
  return gate;
}

/** y += a * x over the first n (default all) values of y, in place. */
export function axpy(isa: KernelIsa, y: Float32Array, a: number, x: Float32Array, n?: number): Float32Array {
  checkIsa(isa);
  checkFloats("y", y, 1);
  checkFinite("a", a);
  const length = checkLength(y, n);
  checkFloats("x", x, length, true);
  native().kernelTesting.axpy(isa, y, a, x, length);
  return y;
}

/**
 * The wrapping (mod 2^64) sum of the first n (default all) words: the plain memory read the decode roofline's
 * bandwidth is measured with.
 */
export function sumWords(isa: KernelIsa, words: BigUint64Array, n?: number): bigint {
  checkIsa(isa);
  if (!(words instanceof BigUint64Array)) throw new ArgumentTypeError("words must be a BigUint64Array");
  const length = n === undefined ? words.length : checkInteger("n", n, 0, words.length);
  // Only the n words are copied next to the guard page, so a kernel reading past them faults.
  return native().kernelTesting.sumWords(isa, words.subarray(0, length), length);
}
