import { mkdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";

import { beforeAll, describe, expect, it } from "vitest";

import { GGML_TYPE_TRAITS, GgmlType, GgufValueType, fileTypeName, inspectModel, type ModelInfo } from "../lib/index.js";
import {
  TINY_DEFAULTS, removeKv, setKv, tinyModelSpec, writeSpec, writeTinyModel, type TinyModelOptions, type TinyModelSpec,
} from "./helpers/tiny-model.js";

const dir = join(import.meta.dirname, "..", ".cache", "test-12-model");

function histogram(spec: TinyModelSpec): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const tensor of spec.tensors) {
    const name = GGML_TYPE_TRAITS[tensor.type].name;
    counts[name] = (counts[name] ?? 0) + 1;
  }
  return counts;
}

async function inspectTiny(name: string, options: TinyModelOptions, edit?: (spec: TinyModelSpec) => void) {
  const path = join(dir, `${name}.gguf`);
  const spec = tinyModelSpec(options);
  edit?.(spec);
  await writeSpec(spec, path);
  return { info: await inspectModel(path, { verifyTensorData: true }), spec, path };
}

beforeAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
});

describe("12 gguf model: valid tiny models of every layout bind and report their hyperparameters", () => {
  it("a merged-expert Mixtral-layout model binds with every ModelInfo field taken from the file", async () => {
    const { info, spec, path } = await inspectTiny("merged", { fileType: 15 });
    const d = TINY_DEFAULTS;
    expect(info).toStrictEqual<ModelInfo>({
      architecture: "llama",
      nLayers: d.nLayers,
      nEmbd: d.nEmbd,
      nFf: d.nFf,
      nHeads: d.nHeads,
      nHeadsKv: d.nHeadsKv,
      headDim: d.nEmbd / d.nHeads,
      ropeDim: d.nEmbd / d.nHeads,
      nExperts: d.nExperts,
      nExpertsUsed: d.nExpertsUsed,
      nVocab: d.nVocab,
      contextLength: d.contextLength,
      ropeTheta: 10000,
      rmsEps: 1e-5,
      slidingWindow: null,
      fileType: 15,
      fileTypeName: "MOSTLY_Q4_K_M",
      tensorCount: spec.tensors.length,
      tensorTypes: histogram(spec),
      fileSize: (await stat(path)).size,
      expertLayout: "merged",
    });
    expect(spec.tensors.length).toBe(3 + d.nLayers * 10);
  });

  it("a legacy per-expert model (blk.N.ffn_gate.E.weight) binds as the legacy layout", async () => {
    const { info, spec } = await inspectTiny("legacy", { layout: "legacy", nExperts: 3, nExpertsUsed: 2 });
    expect(info).toMatchObject({ expertLayout: "legacy", nExperts: 3, nExpertsUsed: 2, tensorCount: spec.tensors.length });
    expect(spec.tensors.length).toBe(3 + TINY_DEFAULTS.nLayers * (7 + 3 * 3));
    expect(spec.tensors.some((t) => t.name === "blk.1.ffn_down.2.weight")).toBe(true);
  });

  it("a dense model (no llama.expert_count) binds with zero experts", async () => {
    const { info } = await inspectTiny("dense", { layout: "dense", nFf: 96 });
    expect(info).toMatchObject({ expertLayout: "dense", nExperts: 0, nExpertsUsed: 0, nFf: 96 });
  });

  it("llama.expert_count = 0 also means dense", async () => {
    const { info } = await inspectTiny("dense-zero-experts", { layout: "dense" }, (s) => {
      setKv(s, "llama.expert_count", GgufValueType.UINT32, 0);
    });
    expect(info.expertLayout).toBe("dense");
  });

  it("a file without output.weight binds (output reuses token_embd)", async () => {
    const { info, spec } = await inspectTiny("tied", { tiedOutput: true });
    expect(spec.tensors.some((t) => t.name === "output.weight")).toBe(false);
    expect(info.tensorCount).toBe(spec.tensors.length);
  });

  it("optional keys fall back to head_count_kv = head_count, rope dims = head dim, theta 10000, eps 1e-5", async () => {
    const { info } = await inspectTiny("defaults", { nHeads: 8, nHeadsKv: 8, ropeTheta: 5e5, rmsEps: 1e-6 }, (s) => {
      for (const key of ["llama.attention.head_count_kv", "llama.rope.dimension_count", "llama.rope.freq_base",
        "llama.attention.layer_norm_rms_epsilon", "llama.vocab_size"]) removeKv(s, key);
    });
    expect(info).toMatchObject({ nHeads: 8, nHeadsKv: 8, headDim: 4, ropeDim: 4, ropeTheta: 10000, rmsEps: 1e-5, fileType: null, fileTypeName: null });
  });

  it("rope theta, rms epsilon, sliding window and a partial rope dimension are read as written", async () => {
    const { info } = await inspectTiny("hparams", { ropeTheta: 1e6, rmsEps: 1e-6, slidingWindow: 4096, contextLength: 32768 }, (s) => {
      setKv(s, "llama.rope.dimension_count", GgufValueType.UINT32, 4);
    });
    expect(info).toMatchObject({ ropeTheta: 1e6, rmsEps: 1e-6, slidingWindow: 4096, contextLength: 32768, ropeDim: 4 });
  });

  it("grouped-query attention with one kv head and any-width integer keys (UINT8, INT64) bind", async () => {
    const { info } = await inspectTiny("gqa", { nHeads: 4, nHeadsKv: 1 }, (s) => {
      setKv(s, "llama.block_count", GgufValueType.UINT8, 2);
      setKv(s, "llama.context_length", GgufValueType.INT64, 512n);
    });
    expect(info).toMatchObject({ nHeads: 4, nHeadsKv: 1, nLayers: 2, contextLength: 512 });
  });

  it.each([GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0])(
    "matrices of ggml type %i bind and the histogram counts them",
    async (type) => {
      const { info } = await inspectTiny(`matrices-${type}`, { matrixType: type });
      const name = GGML_TYPE_TRAITS[type].name;
      expect(info.tensorTypes[name]).toBe(TINY_DEFAULTS.nLayers * 7);  // q, k, v, o and three expert tensors
      expect(info.tensorTypes.F32).toBe(3 + TINY_DEFAULTS.nLayers * 3);  // embd, output norm, output; norms, router
    },
  );

  it("alignment 64 models bind", async () => {
    const { info } = await inspectTiny("align-64", { alignment: 64 });
    expect(info.architecture).toBe("llama");
  });

  it("fileTypeName maps llama.cpp's file types and returns null for ids it does not define", () => {
    expect(fileTypeName(0)).toBe("ALL_F32");
    expect(fileTypeName(7)).toBe("MOSTLY_Q8_0");
    expect(fileTypeName(18)).toBe("MOSTLY_Q6_K");
    expect(fileTypeName(5)).toBeNull();
    expect(fileTypeName(9999)).toBeNull();
  });

  it("inspectModel validates its arguments with TypeError", async () => {
    await expect(inspectModel("")).rejects.toThrow(TypeError);
    await expect(inspectModel(join(dir, "merged.gguf"), { verifyTensorData: 1 as unknown as boolean })).rejects.toThrow(
      /options.verifyTensorData must be a boolean; got 1/,
    );
  });

  it("writeTinyModel writes the spec it returns", async () => {
    const path = join(dir, "helper.gguf");
    const spec = await writeTinyModel(path, { nLayers: 1 });
    const info = await inspectModel(path);
    expect(info.tensorCount).toBe(spec.tensors.length);
  });
});
