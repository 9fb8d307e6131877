/**
 * Opens a GGUF file and validates it as a model this library runs: the container (every field), the
 * hyperparameters, the vocabulary and the shape and type of every tensor the forward pass reads.
 *
 * @example
 * ```ts
 * const info = await inspectModel("mixtral.gguf", { verifyTensorData: false });
 * console.log(`${info.nExperts} experts, ${info.nExpertsUsed} used per token`);
 * ```
 * @module
 */
import { withNativeErrors } from "../errors.js";
import { native } from "../native.js";
import { checkPath, checkVerifyOption } from "./reader.js";

/**
 * How the expert weights are stored: {@link ModelInfo.expertLayout}.
 * @example
 * ```ts
 * import { inspectModel, type ExpertLayout } from "mixtral-native";
 * const layout: ExpertLayout = (await inspectModel("mixtral.gguf")).expertLayout;
 * if (layout === "legacy") console.log("one tensor per expert (a GGUF converted before April 2024)");
 * ```
 */
export type ExpertLayout = "merged" | "legacy" | "dense";

/**
 * A validated model's hyperparameters and file facts: what {@link inspectModel} resolves with and
 * {@link Mixtral.info} holds.
 * @example
 * ```ts
 * import { inspectModel, type ModelInfo } from "mixtral-native";
 * const info: ModelInfo = await inspectModel("mixtral-8x7b-instruct.Q4_K_M.gguf");
 * console.log(info.fileTypeName, `${info.nLayers} layers`, `${info.nExpertsUsed} of ${info.nExperts} experts`, info.tensorTypes);
 * ```
 */
export interface ModelInfo {
  /** general.architecture; always "llama" (Mixtral, Mistral and Llama share it). */
  architecture: string;
  nLayers: number;
  nEmbd: number;
  /** Feed-forward width (per expert in a MoE model). */
  nFf: number;
  nHeads: number;
  nHeadsKv: number;
  headDim: number;
  /** Rotated dimensions per head (llama.rope.dimension_count, default headDim). */
  ropeDim: number;
  /** 0 for a dense model. */
  nExperts: number;
  nExpertsUsed: number;
  nVocab: number;
  contextLength: number;
  /** llama.rope.freq_base, default 10000. */
  ropeTheta: number;
  /** llama.attention.layer_norm_rms_epsilon, default 1e-5. */
  rmsEps: number;
  /** Attention window in tokens, or null for full causal attention. */
  slidingWindow: number | null;
  /** general.file_type (llama.cpp's llama_ftype), or null when absent. */
  fileType: number | null;
  /** llama.cpp's name for fileType, e.g. "MOSTLY_Q4_K_M"; null when absent or unknown. */
  fileTypeName: string | null;
  tensorCount: number;
  /** Number of tensors of each ggml type, e.g. { F32: 65, Q4_K: 193, Q6_K: 33 }. */
  tensorTypes: Record<string, number>;
  fileSize: number;
  /** "merged": blk.N.ffn_*_exps; "legacy": blk.N.ffn_*.E.weight; "dense": no experts. */
  expertLayout: ExpertLayout;
}

/**
 * Options of {@link inspectModel}.
 * @example
 * ```ts
 * import { inspectModel } from "mixtral-native";
 * const info = await inspectModel("downloaded.gguf", { verifyTensorData: true }); // GgufError GGUF_NAN on a corrupt tensor
 * ```
 */
export interface InspectModelOptions {
  /** Scan every tensor for NaN and infinity (reads the whole file; `GGUF_NAN` on failure). Default false. */
  verifyTensorData?: boolean;
}

/** What the addon's inspectModel resolves with. @internal */
export interface NativeModelInfo {
  architecture: string;
  nVocab: number;
  contextLength: number;
  nEmbd: number;
  nLayers: number;
  nFf: number;
  nHeads: number;
  nHeadsKv: number;
  headDim: number;
  ropeDim: number;
  ropeFreqBase: number;
  rmsEps: number;
  nExperts: number;
  nExpertsUsed: number;
  slidingWindow: number;
  fileType: number;
  legacyExpertLayout: boolean;
  tensorCount: number;
  fileSize: number;
  tensorTypes: Record<string, number>;
}

/** llama.cpp's llama_ftype names (general.file_type). */
const FILE_TYPE_NAMES: Readonly<Record<number, string>> = {
  0: "ALL_F32", 1: "MOSTLY_F16", 2: "MOSTLY_Q4_0", 3: "MOSTLY_Q4_1", 4: "MOSTLY_Q4_1_SOME_F16",
  7: "MOSTLY_Q8_0", 8: "MOSTLY_Q5_0", 9: "MOSTLY_Q5_1", 10: "MOSTLY_Q2_K", 11: "MOSTLY_Q3_K_S",
  12: "MOSTLY_Q3_K_M", 13: "MOSTLY_Q3_K_L", 14: "MOSTLY_Q4_K_S", 15: "MOSTLY_Q4_K_M", 16: "MOSTLY_Q5_K_S",
  17: "MOSTLY_Q5_K_M", 18: "MOSTLY_Q6_K", 19: "MOSTLY_IQ2_XXS", 20: "MOSTLY_IQ2_XS", 21: "MOSTLY_Q2_K_S",
  22: "MOSTLY_IQ3_XS", 23: "MOSTLY_IQ3_XXS", 24: "MOSTLY_IQ1_S", 25: "MOSTLY_IQ4_NL", 26: "MOSTLY_IQ3_S",
  27: "MOSTLY_IQ3_M", 28: "MOSTLY_IQ2_S", 29: "MOSTLY_IQ2_M", 30: "MOSTLY_IQ4_XS", 31: "MOSTLY_IQ1_M",
  32: "MOSTLY_BF16", 36: "MOSTLY_TQ1_0", 37: "MOSTLY_TQ2_0",
};

/**
 * llama.cpp's name for a general.file_type value, or null for an id it does not define.
 * @example
 * ```ts
 * import { fileTypeName } from "mixtral-native";
 * fileTypeName(15); // "MOSTLY_Q4_K_M"
 * fileTypeName(5);  // null (an id llama.cpp retired)
 * ```
 */
export function fileTypeName(fileType: number): string | null {
  return FILE_TYPE_NAMES[fileType] ?? null;
}

/**
 * Validates the GGUF file at `path` as a Mixtral / Mistral / Llama model, off the main thread, without loading
 * it: what `mixtral-native info` prints.
 * @example
 * ```ts
 * import { GgufError, inspectModel } from "mixtral-native";
 * try {
 *   const info = await inspectModel("mixtral.gguf");
 *   console.log(`${info.nExperts} experts, ${info.nExpertsUsed} used per token, context ${info.contextLength}`);
 * } catch (err) {
 *   if (err instanceof GgufError) console.error(`not a usable model: ${err.code}`);
 *   else throw err;
 * }
 * ```
 * @throws {TypeError} for a bad argument.
 * @throws {GgufError} with a `GGUF_*` code (malformed file) or a `MODEL_*` code (not a model this library runs).
 */
export async function inspectModel(path: string, options: InspectModelOptions = {}): Promise<ModelInfo> {
  checkPath(path);
  const verifyTensorData = checkVerifyOption(options);
  return toModelInfo(await withNativeErrors(() => native().inspectModel(path, verifyTensorData)));
}

/** The public ModelInfo of the addon's hyperparameters; model loading can return the same shape. @internal */
export function toModelInfo(raw: NativeModelInfo): ModelInfo {
  const fileType = raw.fileType < 0 ? null : raw.fileType;
  return {
    architecture: raw.architecture,
    nLayers: raw.nLayers,
    nEmbd: raw.nEmbd,
    nFf: raw.nFf,
    nHeads: raw.nHeads,
    nHeadsKv: raw.nHeadsKv,
    headDim: raw.headDim,
    ropeDim: raw.ropeDim,
    nExperts: raw.nExperts,
    nExpertsUsed: raw.nExpertsUsed,
    nVocab: raw.nVocab,
    contextLength: raw.contextLength,
    ropeTheta: shortestFloat32(raw.ropeFreqBase),
    rmsEps: shortestFloat32(raw.rmsEps),
    slidingWindow: raw.slidingWindow === 0 ? null : raw.slidingWindow,
    fileType,
    fileTypeName: fileType === null ? null : fileTypeName(fileType),
    tensorCount: raw.tensorCount,
    tensorTypes: raw.tensorTypes,
    fileSize: raw.fileSize,
    expertLayout: raw.nExperts === 0 ? "dense" : raw.legacyExpertLayout ? "legacy" : "merged",
  };
}

/** The shortest decimal that reads back as the same float32 (1e-5, not 0.000009999999747378752). */
function shortestFloat32(value: number): number {
  for (let digits = 1; digits < 9; digits++) {
    const candidate = Number(value.toPrecision(digits));
    if (Math.fround(candidate) === value) return candidate;
  }
  return value;
}
