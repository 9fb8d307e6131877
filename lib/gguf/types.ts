/**
 * GGUF value types and ggml tensor types (REFERENCE.md "GGUF" and "ggml types").
 * @module
 */

/** Type tags of GGUF metadata values. */
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

/** ggml tensor types this library knows. */
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

export interface GgmlTypeTraits {
  /** Name as llama.cpp prints it, e.g. "Q4_K". */
  name: string;
  /** Elements per block. */
  blockSize: number;
  /** Bytes per block. */
  blockBytes: number;
}

/** Block size and bytes for each type, as ggml defines them. */
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

/** The traits of `type`, or undefined for an id this library does not know. */
export function ggmlTypeTraits(type: number): GgmlTypeTraits | undefined {
  return (GGML_TYPE_TRAITS as Record<number, GgmlTypeTraits | undefined>)[type];
}

/** Bytes taken by `count` elements of `type` (count a multiple of the block size). */
export function ggmlByteLength(type: GgmlType, count: number): number {
  const traits = GGML_TYPE_TRAITS[type];
  if (count % traits.blockSize !== 0) {
    throw new RangeError(`${traits.name} needs a multiple of ${traits.blockSize} elements; got ${count}`);
  }
  return (count / traits.blockSize) * traits.blockBytes;
}

/** A metadata value as the reader returns it and the writer accepts it. */
export type GgufScalar = number | bigint | boolean | string;
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
export type GgufValue = GgufScalar | GgufArrayValue;
