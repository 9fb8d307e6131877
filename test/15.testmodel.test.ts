import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { GGML_TYPE_TRAITS, GgmlType } from "../lib/gguf/types.js";
import { inspectModel } from "../lib/gguf/inspect.js";
import { dequantize } from "../lib/gguf/quantize.js";
import {
  MIXTRAL_INSTRUCT_CHAT_TEMPLATE, TEST_MODEL_TYPES, cachedTestModel, createTestModel, resolveTestModelOptions,
  synthesizeTensor, testModelCacheName, type TestModelOptions,
} from "../lib/testing/test-model.js";
import { argmax, compareDistributions } from "./helpers/distributions.js";
import { peekGguf, readTensorBytes } from "./helpers/gguf-peek.js";
import { LlamaOracle, disposeOracleLlama, llamaCppLoads } from "./helpers/llama-oracle.js";

/** Small but every dimension a multiple of 32, so each supported type can hold it. */
const SMALL = { nEmbd: 128, nFf: 256, nHeads: 4, nHeadsKv: 2, nLayers: 2, nExperts: 4, nExpertsUsed: 2 } as const;
/** SMALL, widened to one 256-value super-block per row for the K-quant types. */
function smallModel(type: GgmlType) {
  return GGML_TYPE_TRAITS[type].blockSize === 256 ? { ...SMALL, nEmbd: 256, nFf: 512, type } : { ...SMALL, type };
}
/** llama.cpp's general.file_type (LLAMA_FTYPE) for a file whose matrices are all of one type; K-quants as the _S mix. */
const EXPECTED_FILE_TYPE: Partial<Record<GgmlType, number>> = {
  [GgmlType.F32]: 0, [GgmlType.F16]: 1, [GgmlType.Q4_0]: 2, [GgmlType.Q4_1]: 3, [GgmlType.Q8_0]: 7, [GgmlType.Q5_0]: 8,
  [GgmlType.Q5_1]: 9, [GgmlType.Q2_K]: 10, [GgmlType.Q3_K]: 11, [GgmlType.Q4_K]: 14, [GgmlType.Q5_K]: 16,
  [GgmlType.Q6_K]: 18, [GgmlType.BF16]: 32,
};
/** Over 40 tokens: enough for 32 teacher-forced positions. */
const PROMPT = "The quick brown fox jumps over the lazy dog, and then it runs into the forest to find some food before the night falls " +
  "and the cold wind starts to blow across the quiet hills.";

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "mixtral-native-15-"));
});
afterAll(async () => {
  await disposeOracleLlama();
  await rm(scratch, { recursive: true, force: true });
});

async function sha256(path: string): Promise<string> {
  return createHash("sha256").update(await readFile(path)).digest("hex");
}

async function withOracle<T>(path: string, use: (oracle: LlamaOracle) => Promise<T>): Promise<T> {
  const oracle = await LlamaOracle.load(path);
  try {
    return await use(oracle);
  } finally {
    await oracle.dispose();
  }
}

async function promptTokens(oracle: LlamaOracle, count: number): Promise<number[]> {
  const tokens = [1, ...oracle.tokenize(PROMPT)];
  expect(tokens.length).toBeGreaterThanOrEqual(count);
  return tokens.slice(0, count);
}

describe("15 testmodel: the synthetic Mixtral GGUF builder", () => {
  it.each(TEST_MODEL_TYPES.map((type) => [GgmlType[type], type] as const))(
    "llama.cpp loads a %s model, reads its file type and tensor types, and tokenizes 'Hello world!' as [22557, 1526, 28808]",
    async (_name, type) => {
      const path = await cachedTestModel(smallModel(type));
      const expectedFileType = EXPECTED_FILE_TYPE[type];
      expect(expectedFileType, GgmlType[type]).toBeDefined();
      const { info, tensors } = await peekGguf(path);
      expect(info.metadata.general.file_type).toBe(expectedFileType);
      for (const tensor of tensors.values()) {
        const keepsF32 = tensor.shape.length === 1 || tensor.name.endsWith("ffn_gate_inp.weight");
        expect(tensor.type, tensor.name).toBe(keepsF32 ? GgmlType.F32 : type);
      }
      await withOracle(path, async (oracle) => {
        expect(oracle.tokenize("Hello world!")).toEqual([22557, 1526, 28808]);
        const [first] = await oracle.distributions([1, 22557]);
        expect(first.every(Number.isFinite)).toBe(true);
      });
    },
  );

  it("llama.cpp loads a dense model (no experts) and a model with tied output, and they compute", async () => {
    for (const options of [{ ...SMALL, nExperts: 0, nExpertsUsed: 0 }, { ...SMALL, tiedOutput: true }, { ...SMALL, slidingWindow: 8 }]) {
      const path = await cachedTestModel(options);
      const { tensors } = await peekGguf(path);
      expect(tensors.has("blk.0.ffn_gate.weight")).toBe(options.nExperts === 0);
      expect(tensors.has("blk.0.ffn_gate_exps.weight")).toBe(options.nExperts !== 0);
      expect(tensors.has("output.weight")).toBe(!("tiedOutput" in options));
      await withOracle(path, async (oracle) => {
        const distributions = await oracle.distributions([1, 22557, 1526]);
        expect(distributions.flatMap((d) => [...d.subarray(0, 8)]).every(Number.isFinite)).toBe(true);
      });
    }
  });

  it("llama.cpp (node-llama-cpp 3.21.1) refuses the legacy per-expert layout, so the reference forward pass is its oracle", async () => {
    const path = await cachedTestModel({ ...SMALL, layout: "legacy" });
    const { tensors } = await peekGguf(path);
    expect(tensors.has("blk.0.ffn_down.3.weight")).toBe(true);
    expect(await llamaCppLoads(path)).toEqual({ loaded: false, message: "Failed to load model" });
    expect((await llamaCppLoads(await cachedTestModel(SMALL))).loaded).toBe(true);
  });

  it("the project's own model validator accepts every variant and reads back the options", async () => {
    const variants: Array<Omit<TestModelOptions, "path">> = [
      ...TEST_MODEL_TYPES.map((type) => smallModel(type)),
      { ...SMALL, layout: "legacy" },
      { ...SMALL, nExperts: 0, nExpertsUsed: 0 },
      { ...SMALL, tiedOutput: true, slidingWindow: 8, ropeFreqBase: 10000 },
    ];
    for (const options of variants) {
      const o = resolveTestModelOptions(options);
      const info = await inspectModel(await cachedTestModel(options), { verifyTensorData: true });
      expect(info, JSON.stringify(options)).toMatchObject({
        architecture: "llama", nLayers: o.nLayers, nEmbd: o.nEmbd, nFf: o.nFf, nHeads: o.nHeads, nHeadsKv: o.nHeadsKv,
        headDim: o.nEmbd / o.nHeads, nExperts: o.nExperts, nExpertsUsed: o.nExpertsUsed, nVocab: 32000,
        contextLength: o.contextLength, ropeTheta: o.ropeFreqBase, slidingWindow: o.slidingWindow ?? null,
        expertLayout: o.nExperts === 0 ? "dense" : o.layout,
      });
    }
  });

  it("writes every metadata key of a converted Mixtral, expert keys only with experts and sliding_window only when given", async () => {
    const moe = (await peekGguf(await cachedTestModel({ ...SMALL, slidingWindow: 8, ropeFreqBase: 10000 }))).info.metadata;
    expect(moe.general.architecture).toBe("llama");
    expect(moe.general.name).toBe("mixtral-native synthetic test model");
    const llama = moe.llama as unknown as Record<string, any>;
    expect(llama.vocab_size).toBe(32000);
    expect(llama.context_length).toBe(2048);
    expect(llama.embedding_length).toBe(128);
    expect(llama.block_count).toBe(2);
    expect(llama.feed_forward_length).toBe(256);
    expect(llama.attention.head_count).toBe(4);
    expect(llama.attention.head_count_kv).toBe(2);
    expect(llama.attention.layer_norm_rms_epsilon).toBeCloseTo(1e-5, 10);
    expect(llama.attention.sliding_window).toBe(8);
    expect(llama.rope.freq_base).toBe(10000);
    expect(llama.rope.dimension_count).toBe(32);
    expect(llama.expert_count).toBe(4);
    expect(llama.expert_used_count).toBe(2);
    const tokenizer = moe.tokenizer as unknown as Record<string, any>;
    expect(tokenizer.ggml.model).toBe("llama");
    expect(tokenizer.ggml.tokens.length).toBe(32000);
    expect(tokenizer.ggml.tokens[22557]).toBe("▁Hello");
    expect(tokenizer.ggml.scores.length).toBe(32000);
    expect([...tokenizer.ggml.token_type.slice(0, 4)]).toEqual([2, 3, 3, 6]);
    expect([tokenizer.ggml.bos_token_id, tokenizer.ggml.eos_token_id, tokenizer.ggml.unknown_token_id]).toEqual([1, 2, 0]);
    expect([tokenizer.ggml.add_bos_token, tokenizer.ggml.add_eos_token, tokenizer.ggml.add_space_prefix]).toEqual([true, false, true]);
    expect(tokenizer.chat_template).toBe(MIXTRAL_INSTRUCT_CHAT_TEMPLATE);

    const dense = (await peekGguf(await cachedTestModel({ ...SMALL, nExperts: 0, nExpertsUsed: 0 }))).info.metadata.llama as unknown as Record<string, any>;
    expect(dense.expert_count).toBeUndefined();
    expect(dense.expert_used_count).toBeUndefined();
    expect(dense.attention.sliding_window).toBeUndefined();
  });

  it("the same options give a byte-identical file; another seed gives another file", async () => {
    const options = { ...SMALL, nLayers: 1, type: GgmlType.Q8_0 };
    await createTestModel({ ...options, path: join(scratch, "a.gguf") });
    await createTestModel({ ...options, path: join(scratch, "b.gguf") });
    await createTestModel({ ...options, seed: 2, path: join(scratch, "c.gguf") });
    const [a, b, c] = await Promise.all(["a", "b", "c"].map((f) => sha256(join(scratch, `${f}.gguf`))));
    expect(b).toBe(a);
    expect(c).not.toBe(a);
  });

  it("the merged and legacy layouts of one seed carry the same expert bytes and the same other tensors", async () => {
    for (const type of [GgmlType.F32, GgmlType.Q4_0]) {
      const mergedPath = await cachedTestModel({ ...SMALL, type });
      const legacyPath = await cachedTestModel({ ...SMALL, type, layout: "legacy" });
      const merged = await peekGguf(mergedPath);
      const legacy = await peekGguf(legacyPath);
      expect(merged.tensors.size).toBe(3 + SMALL.nLayers * 10);
      expect(legacy.tensors.size).toBe(3 + SMALL.nLayers * (7 + 3 * SMALL.nExperts));
      for (let layer = 0; layer < SMALL.nLayers; layer++) {
        for (const projection of ["gate", "up", "down"]) {
          const all = await readTensorBytes(mergedPath, merged, `blk.${layer}.ffn_${projection}_exps.weight`);
          const perExpert = all.byteLength / SMALL.nExperts;
          for (let expert = 0; expert < SMALL.nExperts; expert++) {
            const one = await readTensorBytes(legacyPath, legacy, `blk.${layer}.ffn_${projection}.${expert}.weight`);
            expect(one.equals(all.subarray(expert * perExpert, (expert + 1) * perExpert)), `layer ${layer} ${projection} expert ${expert}`).toBe(true);
          }
        }
      }
      for (const name of merged.tensors.keys()) {
        if (name.includes("_exps")) continue;
        const same = (await readTensorBytes(mergedPath, merged, name)).equals(await readTensorBytes(legacyPath, legacy, name));
        expect(same, name).toBe(true);
      }
    }
  });

  it("the file holds exactly the documented generator's numbers (F32), and their quantization (Q8_0)", async () => {
    const options = { ...SMALL, nLayers: 1 };
    const f32Path = await cachedTestModel(options);
    const q8Path = await cachedTestModel({ ...options, type: GgmlType.Q8_0 });
    const f32 = await peekGguf(f32Path);
    const q8 = await peekGguf(q8Path);
    for (const name of ["token_embd.weight", "blk.0.attn_norm.weight", "blk.0.ffn_gate_inp.weight", "blk.0.ffn_down_exps.weight"]) {
      const expected = synthesizeTensor(options, name);
      const bytes = await readTensorBytes(f32Path, f32, name);
      expect(bytes.equals(new Uint8Array(expected.buffer)), name).toBe(true);
      if (q8.tensors.get(name)!.type !== GgmlType.Q8_0) continue;
      const rowLength = q8.tensors.get(name)!.shape[0];
      const restored = dequantize(GgmlType.Q8_0, await readTensorBytes(q8Path, q8, name), rowLength);
      let maxError = 0, maxValue = 0;
      for (let i = 0; i < expected.length; i++) {
        maxError = Math.max(maxError, Math.abs(restored[i] - expected[i]));
        maxValue = Math.max(maxValue, Math.abs(expected[i]));
      }
      expect(maxError, name).toBeLessThanOrEqual(maxValue / 127); // Q8_0: half a step of max|block| / 127, at most
    }
    // Norm weights are 1 ± 0.1, the router's std is 2/sqrt(nEmbd): their ranges say the scales are as documented.
    const norm = synthesizeTensor(options, "blk.0.attn_norm.weight");
    expect(Math.min(...norm)).toBeGreaterThan(0.9);
    expect(Math.max(...norm)).toBeLessThan(1.1);
  });

  it("llama.cpp's next-token distributions on the F32 model are full (32000 tokens summing to 1) and peaked", async () => {
    const path = await cachedTestModel(SMALL);
    await withOracle(path, async (oracle) => {
      const tokens = await promptTokens(oracle, 32);
      const maps = await oracle.probabilityMaps(tokens);
      expect(maps).toHaveLength(32);
      let entropySum = 0;
      for (const probabilities of maps) {
        // no top-k/top-p/min-p truncation: every token of the vocabulary is there, and (almost) all keep mass
        expect(probabilities.size).toBe(32000);
        expect(new Set(probabilities.keys()).size).toBe(32000);
        let sum = 0, entropy = 0, nonZero = 0;
        for (const value of probabilities.values()) {
          sum += value;
          if (value > 0) {
            nonZero++;
            entropy -= value * Math.log(value);
          }
        }
        expect(Math.abs(sum - 1)).toBeLessThan(1e-3); // llama.cpp's float32 normaliser is off by ~6e-5
        expect(nonZero).toBeGreaterThan(31000);
        entropySum += entropy;
      }
      const distributions = await oracle.distributions(tokens);
      const { meanTop1Probability } = compareDistributions(distributions, distributions);
      // Uniform would be 1/32000 ≈ 3e-5 and log(32000) ≈ 10.4 nats. Measured (seed 1): mean top-1 0.42 and mean
      // entropy 2.7 nats; a model whose output scale regressed to near-uniform logits fails both bounds.
      expect(meanTop1Probability).toBeGreaterThan(0.15);
      expect(entropySum / maps.length).toBeLessThan(4);
    });
  });

  it("greedy decoding by the oracle follows the argmax of its own teacher-forced distributions", async () => {
    const path = await cachedTestModel(SMALL);
    await withOracle(path, async (oracle) => {
      const prompt = await promptTokens(oracle, 8);
      const generated = await oracle.greedy(prompt, 16);
      expect(generated).toHaveLength(16);
      const distributions = await oracle.distributions([...prompt, ...generated.slice(0, -1)]);
      const argmaxes = distributions.slice(prompt.length - 1).map(argmax);
      expect(argmaxes).toEqual(generated);
    });
  });

  it("cachedTestModel builds once per option set and names the file by a hash of the options", async () => {
    const cacheDir = join(scratch, "cache");
    const options = { ...SMALL, nLayers: 1, nExperts: 2, nExpertsUsed: 1 };
    const [first, second] = await Promise.all([cachedTestModel(options, cacheDir), cachedTestModel({ ...options }, cacheDir)]);
    expect(second).toBe(first);
    expect(first).toBe(join(cacheDir, testModelCacheName(options)));
    expect(testModelCacheName({ ...options, seed: 9 })).not.toBe(testModelCacheName(options));
    // Defaults are resolved before hashing: spelling one out names the same file.
    expect(testModelCacheName({ ...options, layout: "merged" })).toBe(testModelCacheName(options));
    expect(await readdir(cacheDir)).toEqual([testModelCacheName(options)]);
  });

  it("two builders racing to the same path (as two test workers would) leave one whole file and no temporaries", async () => {
    const dir = join(scratch, "race");
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir);
    const options = { ...SMALL, nLayers: 1, type: GgmlType.Q4_0 };
    const path = join(dir, "model.gguf");
    await Promise.all([createTestModel({ ...options, path }), createTestModel({ ...options, path }), createTestModel({ ...options, path })]);
    expect(await readdir(dir)).toEqual(["model.gguf"]);
    await createTestModel({ ...options, path: join(scratch, "race-reference.gguf") });
    expect(await sha256(path)).toBe(await sha256(join(scratch, "race-reference.gguf")));
  });

  it("rejects every bad option with a TypeError or RangeError that names it", async () => {
    const cases: Array<[Partial<TestModelOptions> & Record<string, unknown>, ErrorConstructor, RegExp]> = [
      [{ nEmbd: 100.5 }, RangeError, /options\.nEmbd/],
      [{ nEmbd: "256" as unknown as number }, TypeError, /options\.nEmbd/],
      [{ nLayers: 0 }, RangeError, /options\.nLayers/],
      [{ nHeads: 3 }, RangeError, /options\.nHeads/],
      [{ nEmbd: 96, nHeads: 32 }, RangeError, /options\.nHeads.*even/],
      [{ nHeads: 8, nHeadsKv: 3 }, RangeError, /options\.nHeadsKv/],
      [{ nFf: 0 }, RangeError, /options\.nFf/],
      [{ nExperts: -1 }, RangeError, /options\.nExperts/],
      [{ nExperts: 4, nExpertsUsed: 5 }, RangeError, /options\.nExpertsUsed/],
      [{ nExperts: 0, nExpertsUsed: 2 }, RangeError, /options\.nExpertsUsed/],
      [{ type: GgmlType.Q8_K }, RangeError, /options\.type/],
      [{ type: GgmlType.Q4_K, nEmbd: 128 }, RangeError, /options\.nEmbd.*block size 256/],
      [{ type: "F32" as unknown as GgmlType }, TypeError, /options\.type/],
      [{ type: GgmlType.Q8_0, nEmbd: 48, nHeads: 4 }, RangeError, /options\.nEmbd.*block size 32/],
      [{ type: GgmlType.Q4_0, nFf: 100 }, RangeError, /options\.nFf.*block size 32/],
      [{ seed: -1 }, RangeError, /options\.seed/],
      [{ seed: 2 ** 32 }, RangeError, /options\.seed/],
      [{ contextLength: 0 }, RangeError, /options\.contextLength/],
      [{ slidingWindow: 0 }, RangeError, /options\.slidingWindow/],
      [{ layout: "split" as "merged" }, RangeError, /options\.layout/],
      [{ layout: "legacy", nExperts: 0 }, RangeError, /options\.layout/],
      [{ ropeFreqBase: Number.NaN }, RangeError, /options\.ropeFreqBase/],
      [{ tiedOutput: 1 as unknown as boolean }, TypeError, /options\.tiedOutput/],
      [{ name: 5 as unknown as string }, TypeError, /options\.name/],
      [{ nExpert: 4 }, TypeError, /options\.nExpert\b/],
    ];
    for (const [options, errorType, message] of cases) {
      expect(() => resolveTestModelOptions(options), JSON.stringify(options)).toThrow(errorType);
      expect(() => resolveTestModelOptions(options), JSON.stringify(options)).toThrow(message);
    }
    await expect(createTestModel({ path: "" })).rejects.toThrow(/options\.path/);
    await expect(createTestModel(null as unknown as TestModelOptions)).rejects.toThrow(TypeError);
    await expect(cachedTestModel({ path: "x.gguf" } as never)).rejects.toThrow(/options\.path/);
    await expect(cachedTestModel({}, "")).rejects.toThrow(/cacheDir/);
  });
});
