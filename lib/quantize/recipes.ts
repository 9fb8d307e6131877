/**
 * Which ggml type each tensor gets under each quantization type (the `--type` of `mixtral-native quantize`).
 * The `_S`/`_M` mixes follow llama.cpp's llama_tensor_get_type in spirit: docs/quantization.md has the table.
 * @module
 */
import { GGML_TYPE_TRAITS, GgmlType } from "../gguf/types.js";

/**
 * The `type` names {@link quantizeModel} accepts, as llama.cpp's quantize tool spells them (lower case).
 * @example
 * ```ts
 * import { QUANTIZE_TYPES, type QuantizeType } from "mixtral-native";
 * const requested = "q5_k_m";
 * if (!(QUANTIZE_TYPES as readonly string[]).includes(requested)) throw new Error(`pick one of ${QUANTIZE_TYPES.join(", ")}`);
 * const type = requested as QuantizeType;
 * ```
 */
export const QUANTIZE_TYPES = [
  "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_k", "q3_k_s", "q3_k_m", "q4_k_s", "q4_k_m", "q5_k_s",
  "q5_k_m", "q6_k",
] as const;

/**
 * One of {@link QUANTIZE_TYPES}: a single ggml type (`q8_0`, `q6_k`, …) or a llama.cpp mix (`q4_k_m`, …).
 * @example
 * ```ts
 * import { quantizeModel, type QuantizeType } from "mixtral-native";
 * const type: QuantizeType = "q4_k_m";
 * await quantizeModel("mixtral-f16.gguf", `mixtral-${type}.gguf`, { type });
 * ```
 */
export type QuantizeType = (typeof QUANTIZE_TYPES)[number];

interface Recipe {
  /** The type of every matrix no rule below picks out. */
  base: GgmlType;
  /** llama.cpp's LLAMA_FTYPE, written as general.file_type. */
  fileType: number;
}

const RECIPES: Record<QuantizeType, Recipe> = {
  f16: { base: GgmlType.F16, fileType: 1 },
  bf16: { base: GgmlType.BF16, fileType: 32 },
  q8_0: { base: GgmlType.Q8_0, fileType: 7 },
  q4_0: { base: GgmlType.Q4_0, fileType: 2 },
  q4_1: { base: GgmlType.Q4_1, fileType: 3 },
  q5_0: { base: GgmlType.Q5_0, fileType: 8 },
  q5_1: { base: GgmlType.Q5_1, fileType: 9 },
  q2_k: { base: GgmlType.Q2_K, fileType: 10 },
  q3_k_s: { base: GgmlType.Q3_K, fileType: 11 },
  q3_k_m: { base: GgmlType.Q3_K, fileType: 12 },
  q4_k_s: { base: GgmlType.Q4_K, fileType: 14 },
  q4_k_m: { base: GgmlType.Q4_K, fileType: 15 },
  q5_k_s: { base: GgmlType.Q5_K, fileType: 16 },
  q5_k_m: { base: GgmlType.Q5_K, fileType: 17 },
  q6_k: { base: GgmlType.Q6_K, fileType: 18 },
};

/** llama.cpp's general.file_type for `type`. */
export function quantizeFileType(type: QuantizeType): number {
  return RECIPES[type].fileType;
}

/** What the recipe needs to know about the model. */
export interface RecipeModel {
  nLayers: number;
  nExperts: number;
  /** Query heads per key/value head. */
  nGqa: number;
  /** Whether the file has its own output.weight (else token_embd doubles as the output projection). */
  hasOutput: boolean;
}

/** The tensor as the recipe sees it: name and ggml shape (shape[0] is the row length). */
export interface RecipeTensor {
  name: string;
  shape: readonly number[];
}

/** llama.cpp's use_more_bits: the first and last eighth of the layers and every third one between get more bits. */
function useMoreBits(layer: number, nLayers: number): boolean {
  return layer < Math.floor(nLayers / 8) || layer >= Math.floor((7 * nLayers) / 8) || (layer - Math.floor(nLayers / 8)) % 3 === 2;
}

function layerOf(name: string): number {
  const match = /^blk\.(\d+)\./.exec(name);
  return match === null ? 0 : Number(match[1]);
}

/** Rows that do not split into 256-value super-blocks take the nearest 32-block type, as llama.cpp does. */
function blockFallback(type: GgmlType, rowLength: number): GgmlType {
  if (rowLength % GGML_TYPE_TRAITS[type].blockSize === 0) return type;
  const fallback = ({
    [GgmlType.Q2_K]: GgmlType.Q4_0, [GgmlType.Q3_K]: GgmlType.Q4_0, [GgmlType.Q4_K]: GgmlType.Q5_0,
    [GgmlType.Q5_K]: GgmlType.Q5_1, [GgmlType.Q6_K]: GgmlType.Q8_0,
  } as Partial<Record<GgmlType, GgmlType>>)[type] ?? type;
  return rowLength % GGML_TYPE_TRAITS[fallback].blockSize === 0 ? fallback : GgmlType.F16;
}

/**
 * The type `tensor` is written in under `type`. Vectors (norms) and the router (`ffn_gate_inp`) stay F32; a float
 * target (f16, bf16) converts every matrix; a quantized target follows the mix. `attnVIndex` counts the attn_v
 * tensors seen before this one (llama.cpp's i_attention_wv).
 */
export function tensorTypeFor(type: QuantizeType, tensor: RecipeTensor, model: RecipeModel, attnVIndex: number): GgmlType {
  const { name, shape } = tensor;
  if (shape.length < 2 || name.includes("ffn_gate_inp") || name.endsWith("_norm.weight")) return GgmlType.F32;
  const base = RECIPES[type].base;
  if (base === GgmlType.F16 || base === GgmlType.BF16) return base;
  let chosen = base;
  const isOutput = name === "output.weight" || (!model.hasOutput && name === "token_embd.weight");
  const moe8 = model.nExperts === 8;
  if (isOutput) {
    if (shape[0] % 256 !== 0) chosen = GgmlType.Q8_0;
    else if (chosen !== GgmlType.Q8_0) chosen = GgmlType.Q6_K;
  } else if (name.includes("attn_v.weight")) {
    if (type === "q2_k") chosen = model.nGqa >= 4 ? GgmlType.Q4_K : GgmlType.Q3_K;
    else if (type === "q3_k_m") chosen = attnVIndex < 2 ? GgmlType.Q5_K : GgmlType.Q4_K;
    else if ((type === "q4_k_m" || type === "q5_k_m") && useMoreBits(attnVIndex, model.nLayers)) chosen = GgmlType.Q6_K;
    else if (type === "q4_k_s" && attnVIndex < 4) chosen = GgmlType.Q5_K;
    // Mixtral: attention is a small share of the bytes, so llama.cpp keeps V (and K) at 8 bits
    if (moe8) chosen = GgmlType.Q8_0;
  } else if (name.includes("attn_k.weight")) {
    if (moe8) chosen = GgmlType.Q8_0;
  } else if (name.includes("ffn_down")) {
    const layer = layerOf(name);
    if (type === "q2_k") chosen = GgmlType.Q3_K;
    else if (type === "q3_k_m") chosen = layer < Math.floor(model.nLayers / 16) ? GgmlType.Q5_K : GgmlType.Q4_K;
    else if ((type === "q4_k_m" || type === "q5_k_m") && useMoreBits(layer, model.nLayers)) chosen = GgmlType.Q6_K;
    else if (type === "q4_k_s" && layer < Math.floor(model.nLayers / 8)) chosen = GgmlType.Q5_K;
  } else if (name.includes("attn_output.weight")) {
    if (moe8) {
      if (type === "q2_k" || type === "q3_k_s" || type === "q3_k_m" || type === "q4_k_s" || type === "q4_k_m") chosen = GgmlType.Q5_K;
    } else if (type === "q2_k") {
      chosen = GgmlType.Q3_K;
    } else if (type === "q3_k_m") {
      chosen = GgmlType.Q4_K;
    }
  }
  return blockFallback(chosen, shape[0]);
}
