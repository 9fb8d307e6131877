import { describe, expect, it } from "vitest";

import { GgmlType } from "../lib/gguf/types.js";
import { dequantize, quantize } from "../lib/gguf/quantize.js";
import {
  ActFormat,
  activationFormatFor,
  activationRowBytes,
  dequantizeRow,
  isMatmulSupported,
  kernelIsas,
  matmul,
  quantizeActivations,
} from "../lib/kernels/testing.js";
import { arrayRmse, cosineData, FAST_ISAS, fromHalf, gaussians } from "./helpers/kernels.js";

// llama.cpp tests/test-quantize-fns.cpp thresholds (REFERENCE.md)
const MAX_QUANTIZATION_TOTAL_ERROR = 0.002;
const MAX_QUANTIZATION_REFERENCE_ERROR = 0.0001;
const MAX_DOT_PRODUCT_ERROR = 0.02;
const MAX_QUANTIZATION_TOTAL_ERROR_2BITS = 0.0075;
const MAX_QUANTIZATION_TOTAL_ERROR_3BITS = 0.004;
const MAX_DOT_PRODUCT_ERROR_LOWBIT = 0.04;
const TEST_SIZE = 4096;

/** llama.cpp's thresholds per weight type: 2- and 3-bit types get the looser ones. */
const WEIGHT_TYPES: Array<[GgmlType, number, number]> = [
  [GgmlType.Q8_0, MAX_QUANTIZATION_TOTAL_ERROR, MAX_DOT_PRODUCT_ERROR],
  [GgmlType.Q4_0, MAX_QUANTIZATION_TOTAL_ERROR, MAX_DOT_PRODUCT_ERROR],
  [GgmlType.Q4_1, MAX_QUANTIZATION_TOTAL_ERROR, MAX_DOT_PRODUCT_ERROR],
  [GgmlType.Q5_0, MAX_QUANTIZATION_TOTAL_ERROR, MAX_DOT_PRODUCT_ERROR],
  [GgmlType.Q5_1, MAX_QUANTIZATION_TOTAL_ERROR, MAX_DOT_PRODUCT_ERROR],
  [GgmlType.Q2_K, MAX_QUANTIZATION_TOTAL_ERROR_2BITS, MAX_DOT_PRODUCT_ERROR_LOWBIT],
  [GgmlType.Q3_K, MAX_QUANTIZATION_TOTAL_ERROR_3BITS, MAX_DOT_PRODUCT_ERROR_LOWBIT],
  [GgmlType.Q4_K, MAX_QUANTIZATION_TOTAL_ERROR, MAX_DOT_PRODUCT_ERROR],
  [GgmlType.Q5_K, MAX_QUANTIZATION_TOTAL_ERROR, MAX_DOT_PRODUCT_ERROR],
  [GgmlType.Q6_K, MAX_QUANTIZATION_TOTAL_ERROR, MAX_DOT_PRODUCT_ERROR],
];

/** Q8_0 activation bytes -> floats, read field by field ({half d; i8 qs[32]}). */
function readQ8_0(bytes: Uint8Array, n: number): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(n);
  for (let b = 0; b < n / 32; b++) {
    const d = fromHalf(view.getUint16(34 * b, true));
    for (let j = 0; j < 32; j++) out[32 * b + j] = view.getInt8(34 * b + 2 + j) * d;
  }
  return out;
}

describe("20 kernels: quantization round trips (llama.cpp test-quantize-fns metrics)", () => {
  for (const [type, maxError, maxDotError] of WEIGHT_TYPES) {
    const format = ActFormat[activationFormatFor(type)];
    it(`${GgmlType[type]} weights of 0.1 + 2cos(i) round-trip with array_rmse <= ${maxError}`, () => {
      const data = cosineData(TEST_SIZE);
      const error = arrayRmse(data, dequantize(type, quantize(type, data, TEST_SIZE), TEST_SIZE));
      expect(error).toBeLessThanOrEqual(maxError);
      expect(error).toBeGreaterThan(0);
    });

    for (const isa of kernelIsas()) {
      it(`${GgmlType[type]} x ${format} dot product on ${isa} is within |dot - ref| / n <= ${maxDotError}`, () => {
        const weights = cosineData(TEST_SIZE, 0);
        const activations = cosineData(TEST_SIZE, 1);
        let reference = 0;
        for (let i = 0; i < TEST_SIZE; i++) reference += weights[i] * activations[i];
        const [dot] = matmul(isa, type, quantize(type, weights, TEST_SIZE), 1, TEST_SIZE, activations, 1);
        expect(Math.abs(dot - reference) / TEST_SIZE).toBeLessThanOrEqual(maxDotError);
      });
    }
  }

  for (const isa of kernelIsas()) {
    it(`Q8_0 activations quantized on ${isa} round-trip with array_rmse <= ${MAX_QUANTIZATION_TOTAL_ERROR}`, () => {
      const data = cosineData(TEST_SIZE);
      const bytes = quantizeActivations(isa, ActFormat.Q8_0, data);
      const viaKernel = dequantizeRow(isa, GgmlType.Q8_0, bytes, TEST_SIZE);
      expect(arrayRmse(data, viaKernel)).toBeLessThanOrEqual(MAX_QUANTIZATION_TOTAL_ERROR);
      expect(Array.from(viaKernel)).toEqual(Array.from(readQ8_0(bytes, TEST_SIZE)));
    });
  }

  for (const isa of FAST_ISAS) {
    it(`${isa} Q8_0 activation quantization matches the scalar reference (array_rmse <= ${MAX_QUANTIZATION_REFERENCE_ERROR})`, () => {
      const data = cosineData(TEST_SIZE);
      const reference = readQ8_0(quantizeActivations("scalar", ActFormat.Q8_0, data), TEST_SIZE);
      const optimized = readQ8_0(quantizeActivations(isa, ActFormat.Q8_0, data), TEST_SIZE);
      expect(arrayRmse(reference, optimized)).toBeLessThanOrEqual(MAX_QUANTIZATION_REFERENCE_ERROR);
    });

    it(`${isa} quantizes F16, BF16, Q8_0 and Q8_K activations bit-identically to the scalar reference, odd lengths and unlucky values`, () => {
      const cases: Array<[string, Float32Array]> = [
        ["gaussian", gaussians(4096 + 224, 3)],
        ["zeros", new Float32Array(512)],
        // Q8_K's scale comes from the first value of largest magnitude, so its sign decides every q's sign
        ["largest magnitude twice, opposite signs", Float32Array.from({ length: 256 }, (_, i) =>
          i === 10 ? -5 : i === 200 ? 5 : Math.sin(i))],
        ["all negative", gaussians(160, 4).map((v) => -Math.abs(v) - 1e-3)],
        ["huge", gaussians(288, 5, 60000)],
        ["tiny (fp16 subnormal scales)", gaussians(352, 6, 1e-6)],
        // max |x| = 127 makes d = 1, so every x = k + 0.5 is an exact tie for the rounding
        ["ties at .5", Float32Array.from({ length: 64 }, (_,
            i) => (i % 32 === 0 ? (i ? -127 : 127) : ((i * 37) % 200) - 100.5))],
      ];
      for (const [label, values] of cases) {
        for (const format of [ActFormat.F16, ActFormat.BF16, ActFormat.Q8_0, ActFormat.Q8_K, ActFormat.F32]) {
          const lengths = format === ActFormat.Q8_0 ? [values.length]
            : format === ActFormat.Q8_K ? [Math.floor(values.length / 256) * 256]
            : [values.length, values.length - 1, 7, 1];
          for (const n of lengths) {
            if (n <= 0) continue;
            const x = values.subarray(0, n);
            const expected = quantizeActivations("scalar", format, x);
            const actual = quantizeActivations(isa, format, x);
            expect(Buffer.compare(Buffer.from(actual), Buffer.from(expected)),
                `${label} ${ActFormat[format]} n=${n}`).toBe(0);
          }
        }
      }
    });
  }

  it("Q8_1 activations (scalar) keep d = max|x| / 127, s = d * sum(q) and round-trip within the threshold", () => {
    const data = cosineData(TEST_SIZE);
    const bytes = quantizeActivations("scalar", ActFormat.Q8_1, data);
    expect(bytes.byteLength).toBe((TEST_SIZE / 32) * 36);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const restored = new Float32Array(TEST_SIZE);
    for (let b = 0; b < TEST_SIZE / 32; b++) {
      const d = fromHalf(view.getUint16(36 * b, true));
      let amax = 0;
      let sum = 0;
      for (let j = 0; j < 32; j++) {
        amax = Math.max(amax, Math.abs(data[32 * b + j]));
        const q = view.getInt8(36 * b + 4 + j);
        sum += q;
        restored[32 * b + j] = q * d;
      }
      expect(Math.abs(d - amax / 127)).toBeLessThanOrEqual((amax / 127) * 1e-3);
      expect(fromHalf(view.getUint16(36 * b + 2, true))).toBeCloseTo(sum * d, 1);
    }
    expect(arrayRmse(data, restored)).toBeLessThanOrEqual(MAX_QUANTIZATION_TOTAL_ERROR);
  });

  it("Q8_K activations (scalar) keep d = extreme / -127, bsums of each 16, and round-trip within the threshold", () => {
    const data = cosineData(TEST_SIZE);
    const bytes = quantizeActivations("scalar", ActFormat.Q8_K, data);
    expect(bytes.byteLength).toBe((TEST_SIZE / 256) * 292);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const restored = new Float32Array(TEST_SIZE);
    for (let b = 0; b < TEST_SIZE / 256; b++) {
      const d = view.getFloat32(292 * b, true);
      for (let g = 0; g < 16; g++) {
        let sum = 0;
        for (let j = 0; j < 16; j++) {
          const q = view.getInt8(292 * b + 4 + 16 * g + j);
          sum += q;
          restored[256 * b + 16 * g + j] = q * d;
        }
        expect(view.getInt16(292 * b + 260 + 2 * g, true)).toBe(sum);
      }
    }
    expect(arrayRmse(data, restored)).toBeLessThanOrEqual(MAX_QUANTIZATION_TOTAL_ERROR);
  });

  it("maps weight types to activation formats as llama.cpp does and reports row sizes", () => {
    expect(activationFormatFor(GgmlType.F32)).toBe(ActFormat.F32);
    expect(activationFormatFor(GgmlType.F16)).toBe(ActFormat.F16);
    expect(activationFormatFor(GgmlType.BF16)).toBe(ActFormat.BF16);
    for (const type of [GgmlType.Q4_0, GgmlType.Q5_0,
        GgmlType.Q8_0]) expect(activationFormatFor(type)).toBe(ActFormat.Q8_0);
    for (const type of [GgmlType.Q4_1, GgmlType.Q5_1]) expect(activationFormatFor(type)).toBe(ActFormat.Q8_1);
    for (const type of [GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K]) {
      expect(activationFormatFor(type)).toBe(ActFormat.Q8_K);
    }
    expect([ActFormat.F32, ActFormat.F16, ActFormat.BF16, ActFormat.Q8_0, ActFormat.Q8_1, ActFormat.Q8_K].map((f) =>
      activationRowBytes(f, 512))).toEqual([2048, 1024, 1024, 544, 576, 584]);
    const supported = [GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_1,
      GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K];
    for (const type of Object.values(GgmlType).filter((v): v is GgmlType => typeof v === "number")) {
      expect(isMatmulSupported(type), GgmlType[type]).toBe(supported.includes(type));
    }
  });

  it("rejects bad arguments with a RangeError or TypeError naming them", () => {
    const x = new Float32Array(64);
    expect(() => quantizeActivations("avx9" as never, ActFormat.Q8_0, x)).toThrow(/isa must be .*"avx9"/);
    expect(() => quantizeActivations("scalar", ActFormat.Q8_0, x.subarray(0, 40))).toThrow(RangeError);
    expect(() => quantizeActivations("scalar", 9 as ActFormat, x)).toThrow(/format must be an ActFormat/);
    expect(() => quantizeActivations("scalar", ActFormat.Q8_0, [1, 2] as never)).toThrow(TypeError);
    expect(() => quantizeActivations("scalar", ActFormat.Q8_0, x, new Uint8Array(10))).toThrow(/out must be/);
    expect(() => dequantizeRow("scalar", GgmlType.Q8_K, new Uint8Array(292), 256)).toThrow(/type must be one of/);
    expect(() => dequantizeRow("scalar", GgmlType.Q4_0, new Uint8Array(17),
        32)).toThrow(/row must hold exactly 18 bytes/);
  });
});
