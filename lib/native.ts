/**
 * Loads the addon through node-gyp-build (prebuilds/ first, then build/) and declares what it exports.
 * Nothing outside lib/ should import the addon directly.
 * @internal
 * @module
 */
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

import type { NativeModelInfo } from "./gguf/inspect.js";
import type { NativeGgufFile } from "./gguf/reader.js";

export type IsaName = "scalar" | "avx2" | "avx512";
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
  // ---- tokenizer (native/addon/tokenizer_binding.cc) ----
  // ---- model (native/addon/model_binding.cc) ----
}

/** The package root: dist/native.js and lib/native.ts both sit one folder below it. */
export const packageRoot = fileURLToPath(new URL("..", import.meta.url));

let addon: NativeAddon | undefined;

/** The addon, loaded on first use. Throws RangeError for an invalid MIXTRAL_NATIVE_ISA. */
export function native(): NativeAddon {
  if (addon) return addon;
  const requested = process.env.MIXTRAL_NATIVE_ISA;
  if (requested !== undefined && requested !== "" && !ISA_NAMES.includes(requested as IsaName)) {
    throw new RangeError(
      `MIXTRAL_NATIVE_ISA must be one of ${ISA_NAMES.join(", ")}; got ${JSON.stringify(requested)}`,
    );
  }
  const require = createRequire(import.meta.url);
  const load = require("node-gyp-build") as (dir: string) => NativeAddon;
  addon = load(packageRoot);
  return addon;
}
