/**
 * Loads the addon through node-gyp-build (a local build/Release first, then prebuilds/) and declares what it exports.
 * Nothing outside lib/ should import the addon directly.
 * @internal
 * @module
 */
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

import { ArgumentRangeError } from "./errors.js";
import type { NativeModelInfo } from "./gguf/inspect.js";
import type { NativeGgufFile } from "./gguf/reader.js";
import type { GgmlType } from "./gguf/types.js";

export type IsaName = "scalar" | "avx2" | "avx512";
/**
 * Where a model's weights live while it runs (`LoadOptions.weights`).
 * @example
 * ```ts
 * const model = await Mixtral.load(path, { weights: "repacked" });
 * const where: WeightMemory = model.weights; // "mapped" when the file has no Q4_0 or Q4_K matrix to repack
 * ```
 */
export type WeightMemory = "mapped" | "copied" | "repacked";
const ISA_NAMES: readonly IsaName[] = ["scalar", "avx2", "avx512"];

export interface CpuInfo {
  /** The SIMD level in use: the best this CPU has, capped by MIXTRAL_NATIVE_ISA. */
  isa: IsaName;
  avx2: boolean;
  avx512: boolean;
  avx512bf16: boolean;
}

export interface NativeAddon {
  cpuInfo(): CpuInfo;
  // ---- gguf (native/addon/gguf_binding.cc) ----
  readGguf(path: string, verifyTensorData: boolean): Promise<NativeGgufFile>;
  inspectModel(path: string, verifyTensorData: boolean): Promise<NativeModelInfo>;
  // ---- kernels (native/addon/kernels_binding.cc) ----
  quantizeRows(type: number, values: Float32Array, rowLength: number): Uint8Array;
  dequantizeRows(type: number, bytes: Uint8Array, rowLength: number): Float32Array;
  /** The kernel ISAs this CPU can run, scalar first. */
  kernelIsas(): IsaName[];
  /**
   * One chosen ISA's kernels on typed arrays, for tests ("active": the table the engine uses); lib/kernels/testing.ts
   * validates every argument.
   */
  kernelTesting: {
    matmul(isa: IsaName | "active", type: number, weights: Uint8Array, n: number, x: Float32Array, nCols: number,
      rowBegin: number, rowEnd: number, out: Float32Array, ldy: number, repacked: boolean): void;
    hasRepackedKernels(isa: IsaName | "active", type: GgmlType): boolean;
    /** Rows per group of the type's interleaved layout (repacked weights), 0 when it has none. */
    interleavedGroupRows(type: number): number;
    quantizeActivations(isa: IsaName | "active", format: number, x: Float32Array, out: Uint8Array): void;
    dequantizeRow(isa: IsaName | "active", type: number, row: Uint8Array, n: number, out: Float32Array): void;
    rmsNorm(isa: IsaName | "active", x: Float32Array, weight: Float32Array, eps: number, out: Float32Array): void;
    rope(isa: IsaName | "active", x: Float32Array, nHeads: number, headDim: number, ropeDim: number, pos: number, freqBase: number): void;
    attnScores(isa: IsaName | "active", q: Float32Array, k: Uint16Array | Float32Array, headDim: number, count: number, scale: number,
      out: Float32Array): void;
    attnAccumulate(isa: IsaName | "active", out: Float32Array, p: Float32Array, v: Uint16Array | Float32Array, headDim: number,
      count: number, heads: number): void;
    softmax(isa: IsaName | "active", x: Float32Array, n: number): void;
    siluMul(isa: IsaName | "active", gate: Float32Array, up: Float32Array, n: number): void;
    axpy(isa: IsaName | "active", y: Float32Array, a: number, x: Float32Array, n: number): void;
    sumWords(isa: IsaName | "active", words: BigUint64Array, n: number): bigint;
    activationRowBytes(format: number, n: number): number;
    activationFormatFor(type: number): number;
    isMatmulSupported(type: number): boolean;
  };
  // ---- quantizer (native/addon/quantize_binding.cc) ----
  /** Whole rows of srcType -> the same rows in dstType, on `threads` threads off the main thread. */
  convertRows(srcType: number, src: Uint8Array, dstType: number, rowLength: number, threads: number): Promise<Uint8Array>;
  // ---- tokenizer (native/addon/tokenizer_binding.cc) ----
  TokenizerHandle: new (
    texts: Uint8Array,
    offsets: Uint32Array,
    scores: Float32Array,
    types: Int32Array,
    unkId: number,
    addSpacePrefix: boolean,
  ) => {
    /** bosId/eosId -1: none. */
    encode(text: string, bosId: number, eosId: number, parseSpecial: boolean): Int32Array;
    encodeAsync(text: string, bosId: number, eosId: number, parseSpecial: boolean): Promise<Int32Array>;
  };
  // ---- bench (native/addon/bench_binding.cc) ----
  measureReadBandwidth(bytes: number, threads: number, passes: number): Promise<number[]>;
  // ---- model (native/addon/model_binding.cc) ----
  loadModel(path: string, options: NativeModelOptions, control: NativeLoadControl): Promise<NativeModelHandle>;
  NativeLoadControl: new () => NativeLoadControl;
  NativeSession: new (model: NativeModelHandle, options: NativeSessionOptions, logits: Float32Array) => NativeSessionHandle;
}

export interface NativeModelOptions {
  threads: number;
  weights: WeightMemory;
  /** -1: the file's; 0: none; > 0: window */
  slidingWindow: number;
  /** 0: the file's */
  expertsPerToken: number;
  verifyTensorData: boolean;
}

/** A load's abort switch and progress gauge, read while the load runs off the main thread. */
export interface NativeLoadControl {
  /** The load stops at its next chunk (tens of MiB) and rejects with ABORT_ERR. */
  requestAbort(): void;
  /** The fraction of the load's long steps (copy, scan, repack) done, in [0, 1]; 0 when it has none. */
  progress(): number;
}

export interface NativeModelHandle {
  info(): NativeModelInfo;
  weights(): WeightMemory;
  dispose(): void;
}

export interface NativeSessionOptions {
  contextSize: number;
  batchSize: number;
  kvType: "f16" | "f32";
}

export interface NativeSessionHandle {
  eval(tokens: Int32Array): Promise<void>;
  requestAbort(): void;
  rewind(n: number): boolean;
  reset(): void;
  position(): number;
  maxRewind(): number;
  routingCounts(): Float64Array;
  resetRouting(): void;
  lastRouting(): { experts: Int32Array; weights: Float32Array };
  setExpertsPerToken(k: number): void;
  stats(): { kvBytes: number; slidingWindow: number; contextSize: number; expertsPerToken: number };
  /** tokens: the cache's ids (position() of them); logits: the current next-token logits, or null. */
  saveState(tokens: Int32Array, logits: Float32Array | null): Uint8Array;
  /** Throws STATE_* errors; the session is unchanged unless the whole buffer is valid. */
  loadState(bytes: Uint8Array): { tokens: Int32Array; logits: Float32Array | null };
  dispose(): void;
}

/** The package root: dist/native.js and lib/native.ts both sit one folder below it. */
export const packageRoot = fileURLToPath(new URL("..", import.meta.url));

let addon: NativeAddon | undefined;

/** The addon, loaded on first use. Throws RangeError for an invalid MIXTRAL_NATIVE_ISA. */
export function native(): NativeAddon {
  if (addon) return addon;
  const requested = process.env.MIXTRAL_NATIVE_ISA;
  if (requested !== undefined && requested !== "" && !ISA_NAMES.includes(requested as IsaName)) {
    throw new ArgumentRangeError(
      `MIXTRAL_NATIVE_ISA must be one of ${ISA_NAMES.join(", ")}; got ${JSON.stringify(requested)}`,
      "ERR_INVALID_ARG_VALUE",
    );
  }
  const require = createRequire(import.meta.url);
  const load = require("node-gyp-build") as (dir: string) => NativeAddon;
  addon = load(packageRoot);
  return addon;
}
