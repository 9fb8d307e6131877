/**
 * GGUF value types and ggml tensor types (REFERENCE.md "GGUF" and "ggml types").
 * @module
 */

import { ArgumentRangeError } from "../errors.js";

/**
 * Type tags of GGUF metadata values: what {@link GgufMetadataEntry.type} reports and {@link GgufWriter.set} takes.
 * @example
 * ```ts
 * import { GgufValueType, GgufWriter, readGguf } from "mixtral-native";
 * const { metadata } = await readGguf("model.gguf");
 * const tokens = metadata.get("tokenizer.ggml.tokens");
 * if (tokens?.type === GgufValueType.ARRAY && tokens.elementType === GgufValueType.STRING) console.log((tokens.value as string[]).length);
 * new GgufWriter().set("llama.context_length", GgufValueType.UINT32, 32768);
 * ```
 */
export enum GgufValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/**
 * ggml tensor types this library knows: the element type of a tensor in a GGUF file.
 * @example
 * ```ts
 * import { GgmlType, readGguf } from "mixtral-native";
 * const { tensors } = await readGguf("mixtral.gguf");
 * const q4k = tensors.filter((t) => t.type === GgmlType.Q4_K).length;
 * console.log(GgmlType[tensors[0].type]); // e.g. "Q4_K"
 * ```
 */
export enum GgmlType {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  BF16 = 30,
}

/**
 * How a ggml type packs its elements: blocks of `blockSize` values stored in `blockBytes` bytes.
 * @example
 * ```ts
 * import { GGML_TYPE_TRAITS, GgmlType, type GgmlTypeTraits } from "mixtral-native";
 * const { name, blockSize, blockBytes }: GgmlTypeTraits = GGML_TYPE_TRAITS[GgmlType.Q4_K]; // "Q4_K", 256, 144
 * const bitsPerWeight = (8 * blockBytes) / blockSize; // 4.5
 * ```
 */
export interface GgmlTypeTraits {
  /** Name as llama.cpp prints it, e.g. "Q4_K". */
  name: string;
  /** Elements per block. */
  blockSize: number;
  /** Bytes per block. */
  blockBytes: number;
}

/**
 * Block size and bytes for each type, as ggml defines them.
 * @example
 * ```ts
 * import { GGML_TYPE_TRAITS, GgmlType } from "mixtral-native";
 * const { blockSize, blockBytes } = GGML_TYPE_TRAITS[GgmlType.Q8_0]; // 32 values in 34 bytes
 * const rowBytes = (4096 / blockSize) * blockBytes; // 4352
 * ```
 */
export const GGML_TYPE_TRAITS: Readonly<Record<GgmlType, GgmlTypeTraits>> = {
  [GgmlType.F32]: { name: "F32", blockSize: 1, blockBytes: 4 },
  [GgmlType.F16]: { name: "F16", blockSize: 1, blockBytes: 2 },
  [GgmlType.Q4_0]: { name: "Q4_0", blockSize: 32, blockBytes: 18 },
  [GgmlType.Q4_1]: { name: "Q4_1", blockSize: 32, blockBytes: 20 },
  [GgmlType.Q5_0]: { name: "Q5_0", blockSize: 32, blockBytes: 22 },
  [GgmlType.Q5_1]: { name: "Q5_1", blockSize: 32, blockBytes: 24 },
  [GgmlType.Q8_0]: { name: "Q8_0", blockSize: 32, blockBytes: 34 },
  [GgmlType.Q8_1]: { name: "Q8_1", blockSize: 32, blockBytes: 36 },
  [GgmlType.Q2_K]: { name: "Q2_K", blockSize: 256, blockBytes: 84 },
  [GgmlType.Q3_K]: { name: "Q3_K", blockSize: 256, blockBytes: 110 },
  [GgmlType.Q4_K]: { name: "Q4_K", blockSize: 256, blockBytes: 144 },
  [GgmlType.Q5_K]: { name: "Q5_K", blockSize: 256, blockBytes: 176 },
  [GgmlType.Q6_K]: { name: "Q6_K", blockSize: 256, blockBytes: 210 },
  [GgmlType.Q8_K]: { name: "Q8_K", blockSize: 256, blockBytes: 292 },
  [GgmlType.BF16]: { name: "BF16", blockSize: 1, blockBytes: 2 },
};

/**
 * The traits of `type`, or undefined for an id this library does not know: the safe lookup for a number read
 * from a file.
 * @example
 * ```ts
 * import { ggmlTypeTraits } from "mixtral-native";
 * ggmlTypeTraits(12)?.name; // "Q4_K"
 * ggmlTypeTraits(99);       // undefined
 * ```
 */
export function ggmlTypeTraits(type: number): GgmlTypeTraits | undefined {
  return (GGML_TYPE_TRAITS as Record<number, GgmlTypeTraits | undefined>)[type];
}

/**
 * Bytes taken by `count` elements of `type` (count a multiple of the block size; RangeError otherwise).
 * @example
 * ```ts
 * import { GgmlType, ggmlByteLength } from "mixtral-native";
 * ggmlByteLength(GgmlType.Q4_K, 4096 * 14336); // 33030144: one Mixtral expert's gate matrix
 * ggmlByteLength(GgmlType.F16, 4096);          // 8192
 * ```
 */
export function ggmlByteLength(type: GgmlType, count: number): number {
  const traits = GGML_TYPE_TRAITS[type];
  if (count % traits.blockSize !== 0) {
    throw new ArgumentRangeError(`${traits.name} needs a multiple of ${traits.blockSize} elements; got ${count}`);
  }
  return (count / traits.blockSize) * traits.blockBytes;
}

/**
 * A single metadata value as the reader returns it and the writer accepts it (UINT64/INT64 as bigint).
 * @example
 * ```ts
 * import { readGguf, type GgufScalar } from "mixtral-native";
 * const { metadata } = await readGguf("model.gguf");
 * const name: GgufScalar | undefined = metadata.get("general.name")?.value as GgufScalar | undefined;
 * ```
 */
export type GgufScalar = number | bigint | boolean | string;

/**
 * An ARRAY metadata value: a typed array for numeric elements, an array for BOOL and STRING elements, and an
 * array of those for a nested array.
 * @example
 * ```ts
 * import { GgufValueType, GgufWriter, type GgufArrayValue } from "mixtral-native";
 * const scores: GgufArrayValue = new Float32Array([0, -1, -2]);
 * new GgufWriter().set("tokenizer.ggml.scores", GgufValueType.ARRAY, scores, GgufValueType.FLOAT32);
 * ```
 */
export type GgufArrayValue =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array
  | BigUint64Array
  | BigInt64Array
  | readonly boolean[]
  | readonly string[]
  | readonly GgufArrayValue[];
/**
 * Any metadata value: {@link GgufMetadataEntry.value}, and what {@link GgufWriter.set} writes.
 * @example
 * ```ts
 * import { readGguf, type GgufValue } from "mixtral-native";
 * const { metadata } = await readGguf("model.gguf");
 * const values: Record<string, GgufValue> = Object.fromEntries([...metadata].map(([key, entry]) => [key, entry.value]));
 * ```
 */
export type GgufValue = GgufScalar | GgufArrayValue;
