import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { QUANTIZE_TYPES, quantizeModel, type QuantizeType } from "../lib/index.js";
import { cachedTestModel } from "../lib/testing/test-model.js";
import { compareDistributions } from "./helpers/distributions.js";
import { engineDistributions } from "./helpers/engine.js";
import { LlamaOracle, disposeOracleLlama, llamaCppLoads } from "./helpers/llama-oracle.js";

const root = join(import.meta.dirname, "..");
const dir = join(root, ".cache", "test-27-quantize-llama");
const PROMPT =
  "In the beginning God created the heaven and the earth. And the earth was without form, and void; and darkness " +
  "was upon the face of the deep. And the Spirit of God moved upon the face of the waters.";
/** The parity model: Mixtral's routing (8 experts, top 2) and GQA 4 at the parity suite's size. */
const PARITY_MODEL = { nEmbd: 256, nFf: 512, nLayers: 2, nHeads: 8, nHeadsKv: 2, nExperts: 8, nExpertsUsed: 2 } as const;
/** The KL-order model: bench/quant-kl.mjs's default, 4 layers so the per-layer mixes differ between layers. */
const ORDER_MODEL = { nEmbd: 512, nFf: 1024, nLayers: 4, nHeads: 8, nHeadsKv: 2, nExperts: 8, nExpertsUsed: 2 } as const;
const ORDER: QuantizeType[] = ["q8_0", "q6_k", "q5_k_m", "q4_k_m", "q3_k_m", "q2_k"];

beforeAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
});
afterAll(() => disposeOracleLlama());

async function promptTokens(path: string): Promise<number[]> {
  const oracle = await LlamaOracle.load(path, { kvCacheType: "F16" });
  try {
    return [1, ...oracle.tokenize(PROMPT)].slice(0, 48);
  } finally {
    await oracle.dispose();
  }
}

describe("27 quantize: llama.cpp reads every file the quantizer writes, and the engine agrees with it", () => {
  it.each(QUANTIZE_TYPES.map((type) => [type]))("%s: llama.cpp loads the file, and engine vs llama.cpp mean KL ≤ 1e-3, top-1 ≥ 97%", async (type) => {
    const output = join(dir, `parity-${type}.gguf`);
    await quantizeModel(await cachedTestModel(PARITY_MODEL), output, { type, threads: 2 });
    const load = await llamaCppLoads(output);
    expect(load.message).toBe("");
    expect(load.loaded).toBe(true);

    // Both engines keep F32 KV caches, so the comparison measures the weight formats' arithmetic. With F16 caches,
    // q, K, V and the softmax weights are each rounded to fp16, and a one-ulp difference in float summation order
    // between the engines' attention then lands on the other side of an fp16 boundary now and then; on this small
    // random model that alone moves the mean KL to 4e-5..1e-3 for every type (measured; q2_k: 8e-13 with F32
    // caches, 1.0e-3 with F16), which would hide what this test is about.
    const oracle = await LlamaOracle.load(output, { kvCacheType: "F32" });
    let expected: Float64Array[], tokens: number[];
    try {
      tokens = [1, ...oracle.tokenize(PROMPT)].slice(0, 48);
      expected = await oracle.distributions(tokens);
    } finally {
      await oracle.dispose();
    }
    const comparison = compareDistributions(expected, await engineDistributions(output, tokens, { load: { threads: 2 }, session: { kvCacheType: "f32" } }));
    expect(comparison.meanKl).toBeLessThanOrEqual(1e-3);
    expect(comparison.top1Agreement).toBeGreaterThanOrEqual(0.97);
  });

  it(`KL against the F32 model's distributions rises in the order ${ORDER.join(" < ")}`, async () => {
    const f32 = await cachedTestModel(ORDER_MODEL);
    const tokens = await promptTokens(f32);
    const reference = await engineDistributions(f32, tokens, { load: { threads: 2 } });
    const kls: number[] = [];
    for (const type of ORDER) {
      const output = join(dir, `order-${type}.gguf`);
      await quantizeModel(f32, output, { type, threads: 2 });
      kls.push(compareDistributions(reference, await engineDistributions(output, tokens, { load: { threads: 2 } })).meanKl);
      await rm(output);
    }
    for (let i = 1; i < kls.length; i++) expect(kls[i], `${ORDER[i - 1]} ${kls[i - 1]} < ${ORDER[i]} ${kls[i]}`).toBeGreaterThan(kls[i - 1]);
  }, 300_000);
});
