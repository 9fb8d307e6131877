/**
 * Converting float rows to a ggml type's bytes and back (the scalar reference converters of the addon).
 * @module
 */
import { ArgumentRangeError, ArgumentTypeError } from "../errors.js";
import { native } from "../native.js";
import { GGML_TYPE_TRAITS, GgmlType } from "./types.js";

/**
 * The types {@link quantize} can write; {@link dequantize} reads every known type.
 * @example
 * ```ts
 * import { GGML_TYPE_TRAITS, QUANTIZABLE_TYPES } from "mixtral-native";
 * console.log(QUANTIZABLE_TYPES.map((type) => GGML_TYPE_TRAITS[type].name).join(", "));
 * // F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K
 * ```
 */
export const QUANTIZABLE_TYPES: readonly GgmlType[] = [
  GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1,
  GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K,
];

function checkRows(what: string, type: GgmlType, elements: number, rowLength: number): void {
  const traits = GGML_TYPE_TRAITS[type];
  if (traits === undefined) throw new ArgumentRangeError(`type must be a GgmlType; got ${type}`, "ERR_INVALID_ARG_VALUE");
  if (!Number.isSafeInteger(rowLength) || rowLength <= 0 || rowLength % traits.blockSize !== 0) {
    throw new ArgumentRangeError(`rowLength must be a positive multiple of ${traits.name}'s block size ${traits.blockSize}; got ${rowLength}`);
  }
  if (elements % rowLength !== 0) throw new ArgumentRangeError(`${what} holds ${elements} values, not a whole number of rows of ${rowLength}`);
}

/**
 * Quantizes `values` (whole rows of `rowLength`) to `type`, row by row.
 * @example
 * ```ts
 * const bytes = quantize(GgmlType.Q8_0, new Float32Array(64).fill(0.5), 64); // 2 blocks, 68 bytes
 * ```
 */
export function quantize(type: GgmlType, values: Float32Array, rowLength: number): Uint8Array {
  if (!(values instanceof Float32Array)) throw new ArgumentTypeError("values must be a Float32Array");
  if (!QUANTIZABLE_TYPES.includes(type)) {
    throw new ArgumentRangeError(
      `type must be one of ${QUANTIZABLE_TYPES.map((t) => GGML_TYPE_TRAITS[t].name).join(", ")}; got ${GGML_TYPE_TRAITS[type]?.name ?? type}`,
      "ERR_INVALID_ARG_VALUE",
    );
  }
  checkRows("values", type, values.length, rowLength);
  return native().quantizeRows(type, values, rowLength);
}

/**
 * Expands bytes of `type` (whole rows of `rowLength` values) to floats, as llama.cpp dequantizes them. Reads
 * every {@link GgmlType}, K-quants included, so a tensor of a GGUF file can be inspected in JavaScript.
 * @example
 * ```ts
 * import { GgmlType, dequantize, quantize } from "mixtral-native";
 * const values = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i));
 * const restored = dequantize(GgmlType.Q8_0, quantize(GgmlType.Q8_0, values, 64), 64); // 64 floats, each within about 1/254 of the largest |value|
 * ```
 */
export function dequantize(type: GgmlType, bytes: Uint8Array, rowLength: number): Float32Array {
  if (!(bytes instanceof Uint8Array)) throw new ArgumentTypeError("bytes must be a Uint8Array");
  checkRows("bytes", type, 0, rowLength);
  const traits = GGML_TYPE_TRAITS[type];
  const rowBytes = (rowLength / traits.blockSize) * traits.blockBytes;
  if (bytes.byteLength % rowBytes !== 0) {
    throw new ArgumentRangeError(`bytes holds ${bytes.byteLength} bytes, not a whole number of ${traits.name} rows of ${rowBytes} bytes`);
  }
  return native().dequantizeRows(type, bytes, rowLength);
}
