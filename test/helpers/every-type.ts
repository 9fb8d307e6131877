/**
 * A small non-model GGUF file holding one metadata value of every type (extremes, empty strings and arrays,
 * UTF-8 keys) and a few tensors: the reader's round-trip fixture and the file truncated at every byte.
 */
import { GgmlType, GgufValueType } from "../../lib/gguf/types.js";
import { mulberry32, randomTensorData, type TinyModelSpec } from "./tiny-model.js";

export function everyTypeSpec(alignment = 32): TinyModelSpec {
  const T = GgufValueType;
  const random = mulberry32(99);
  return {
    alignment,
    metadata: [
      { key: "test.u8", type: T.UINT8, value: 255 },
      { key: "test.i8", type: T.INT8, value: -128 },
      { key: "test.u16", type: T.UINT16, value: 65535 },
      { key: "test.i16", type: T.INT16, value: -32768 },
      { key: "test.u32", type: T.UINT32, value: 4294967295 },
      { key: "test.i32", type: T.INT32, value: -2147483648 },
      { key: "test.f32", type: T.FLOAT32, value: -1.5e-7 },
      { key: "test.f64", type: T.FLOAT64, value: Math.PI },
      { key: "test.bool.true", type: T.BOOL, value: true },
      { key: "test.bool.false", type: T.BOOL, value: false },
      { key: "test.string", type: T.STRING, value: "héllo wörld ☃ 日本語 🎉" },
      { key: "test.string.empty", type: T.STRING, value: "" },
      { key: "test.u64.max", type: T.UINT64, value: 2n ** 64n - 1n },
      { key: "test.i64.min", type: T.INT64, value: -(2n ** 63n) },
      { key: "test.i64.max", type: T.INT64, value: 2n ** 63n - 1n },
      { key: "général.clé.日本語", type: T.STRING, value: "utf-8 key" },
      { key: "test.array.u8", type: T.ARRAY, elementType: T.UINT8, value: Uint8Array.of(0, 1, 255) },
      { key: "test.array.i8", type: T.ARRAY, elementType: T.INT8, value: Int8Array.of(-128, 0, 127) },
      { key: "test.array.u16", type: T.ARRAY, elementType: T.UINT16, value: Uint16Array.of(0, 65535) },
      { key: "test.array.i16", type: T.ARRAY, elementType: T.INT16, value: Int16Array.of(-32768, 32767) },
      { key: "test.array.u32", type: T.ARRAY, elementType: T.UINT32, value: Uint32Array.of(0, 4294967295, 7) },
      { key: "test.array.i32", type: T.ARRAY, elementType: T.INT32, value: Int32Array.of(-2147483648, 2147483647) },
      { key: "test.array.f32", type: T.ARRAY, elementType: T.FLOAT32, value: Float32Array.of(0.5, -0, 3.4028234663852886e38, 1e-45) },
      { key: "test.array.f64", type: T.ARRAY, elementType: T.FLOAT64, value: Float64Array.of(Math.E, -Number.MAX_VALUE, 5e-324) },
      { key: "test.array.u64", type: T.ARRAY, elementType: T.UINT64, value: BigUint64Array.of(0n, 2n ** 64n - 1n) },
      { key: "test.array.i64", type: T.ARRAY, elementType: T.INT64, value: BigInt64Array.of(-(2n ** 63n), 2n ** 63n - 1n) },
      { key: "test.array.bool", type: T.ARRAY, elementType: T.BOOL, value: [true, false, true] },
      { key: "test.array.string", type: T.ARRAY, elementType: T.STRING, value: ["a", "", "ü☃", "<0x0A>"] },
      { key: "test.array.empty", type: T.ARRAY, elementType: T.UINT32, value: new Uint32Array(0) },
      { key: "test.array.string.empty", type: T.ARRAY, elementType: T.STRING, value: [] },
    ],
    tensors: [
      { name: "vector.f32", type: GgmlType.F32, shape: [5], data: randomTensorData(GgmlType.F32, [5], random, 1) },
      { name: "matrix.q8_0", type: GgmlType.Q8_0, shape: [64, 3], data: randomTensorData(GgmlType.Q8_0, [64, 3], random, 1) },
      { name: "cube.f16", type: GgmlType.F16, shape: [2, 3, 4], data: randomTensorData(GgmlType.F16, [2, 3, 4], random, 1) },
      { name: "hyper.q4_0", type: GgmlType.Q4_0, shape: [32, 1, 2, 1], data: randomTensorData(GgmlType.Q4_0, [32, 1, 2, 1], random, 1) },
    ],
  };
}
