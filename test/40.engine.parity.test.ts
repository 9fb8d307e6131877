import { afterAll, describe, expect, it } from "vitest";

import { GgmlType } from "../lib/gguf/types.js";
import { cachedTestModel, type TestModelOptions } from "../lib/testing/test-model.js";
import { compareDistributions, klDivergence } from "./helpers/distributions.js";
import { engineBatchedLast, engineDistributions } from "./helpers/engine.js";
import { LlamaOracle, disposeOracleLlama } from "./helpers/llama-oracle.js";

const PROMPT =
  "In the beginning God created the heaven and the earth. And the earth was without form, and void; and darkness " +
  "was upon the face of the deep. And the Spirit of God moved upon the face of the waters.";
const BASE = { nEmbd: 256, nFf: 512, nLayers: 2, nHeads: 8, nHeadsKv: 2, nExperts: 8, nExpertsUsed: 2 } as const;

// Every weight type, dense, top-1 routing and each GQA ratio (nHeads / nHeadsKv) of issue 4.
const MODELS: Array<[string, Omit<TestModelOptions, "path">]> = [
  ["F32, 8 experts top-2, GQA 4", { ...BASE, type: GgmlType.F32 }],
  ["F16", { ...BASE, type: GgmlType.F16 }],
  ["BF16", { ...BASE, type: GgmlType.BF16 }],
  ["Q8_0", { ...BASE, type: GgmlType.Q8_0 }],
  ["Q4_0", { ...BASE, type: GgmlType.Q4_0 }],
  ["dense (Mistral layout)", { ...BASE, nExperts: 0, nExpertsUsed: 0 }],
  ["4 experts top-1", { ...BASE, nExperts: 4, nExpertsUsed: 1 }],
  ["GQA 1", { ...BASE, nHeadsKv: 8 }],
  ["GQA 2", { ...BASE, nHeadsKv: 4 }],
  ["GQA 8", { ...BASE, nHeadsKv: 1 }],
];

afterAll(() => disposeOracleLlama());

async function oracleRun<T>(path: string, use: (oracle: LlamaOracle, tokens: number[]) => Promise<T>): Promise<T> {
  const oracle = await LlamaOracle.load(path, { kvCacheType: "F16" });
  try {
    return await use(oracle, [1, ...oracle.tokenize(PROMPT)].slice(0, 48));
  } finally {
    await oracle.dispose();
  }
}

describe("40 engine: teacher-forced distributions equal llama.cpp's", () => {
  it.each(MODELS)("%s: mean KL ≤ 1e-3 and top-1 agreement ≥ 97% over 48 positions", async (_label, options) => {
    const path = await cachedTestModel(options);
    const { expected, tokens } = await oracleRun(path, async (oracle, tokens) => ({ expected: await oracle.distributions(tokens), tokens }));
    const actual = await engineDistributions(path, tokens, { load: { threads: 2 } });
    const comparison = compareDistributions(expected, actual);
    expect(comparison.meanKl).toBeLessThanOrEqual(1e-3);
    expect(comparison.top1Agreement).toBeGreaterThanOrEqual(0.97);
  });

  it.each(MODELS)("%s: one batched eval gives the last distribution of token-by-token eval (KL ≤ 1e-4)", async (_label, options) => {
    const path = await cachedTestModel(options);
    const tokens = await oracleRun(path, async (_oracle, tokens) => tokens);
    const stepwise = await engineDistributions(path, tokens, { load: { threads: 2 } });
    const batched = await engineBatchedLast(path, tokens, { load: { threads: 2 } });
    expect(klDivergence(stepwise[stepwise.length - 1], batched)).toBeLessThanOrEqual(1e-4);
  });
});
