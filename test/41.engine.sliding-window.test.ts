// Sliding-window attention (issue 4, item 3). llama.cpp applies no window to the llama architecture, so the
// oracle is the float64 reference forward pass (test/reference/forward.ts), which test 16 holds to llama.cpp at
// full attention and which applies the window in its attention loop over a cache of every position.
import { beforeAll, describe, expect, it } from "vitest";

import { Mixtral, type LoadOptions } from "../lib/model.js";
import type { Session } from "../lib/session.js";
import { cachedTestModel } from "../lib/testing/test-model.js";
import { argmax, compareDistributions, softmax } from "./helpers/distributions.js";
import { expectSameLogits } from "./helpers/logits.js";
import { loadReferenceModel, teacherForcedDistributions, type ReferenceModel } from "./reference/forward.js";

const WINDOW = 8;
const SHAPE = { nEmbd: 128, nFf: 256, nLayers: 2, nHeads: 4, nHeadsKv: 2, nExperts: 8, nExpertsUsed: 2 } as const;
const KV_DIM = (SHAPE.nEmbd / SHAPE.nHeads) * SHAPE.nHeadsKv;
// The windowed file declares a context of 32 positions, so every windowed run below goes past it.
const WINDOWED = { ...SHAPE, slidingWindow: WINDOW, contextLength: 32 };
const TEXT =
  "In the beginning God created the heaven and the earth. And the earth was without form, and void; and darkness was " +
  "upon the face of the deep. And the Spirit of God moved upon the face of the waters. And God said, Let there be " +
  "light: and there was light. And God saw the light, that it was good.";
const LENGTH = 64;
const PREFILL = 48;

let windowedPath: string;
let plainPath: string;
let tokens: number[];
let reference: ReferenceModel;
let windowedExpected: Float64Array[];
let fullExpected: Float64Array[];

beforeAll(async () => {
  windowedPath = await cachedTestModel(WINDOWED);
  plainPath = await cachedTestModel(SHAPE); // the same seed: the same weights, no window in the metadata
  const model = await Mixtral.load(plainPath, { threads: 2 });
  tokens = Array.from(model.tokenizer.encode(TEXT)).slice(0, LENGTH);
  await model.dispose();
  expect(tokens).toHaveLength(LENGTH);
  reference = await loadReferenceModel(windowedPath);
  expect(reference.config.slidingWindow).toBe(WINDOW);
  windowedExpected = teacherForcedDistributions(reference, tokens).distributions;
  fullExpected = teacherForcedDistributions(reference, tokens, { slidingWindow: null }).distributions;
});

async function withModel<T>(path: string, load: LoadOptions, use: (model: Mixtral) => Promise<T>): Promise<T> {
  const model = await Mixtral.load(path, { threads: 2, ...load });
  try {
    return await use(model);
  } finally {
    await model.dispose();
  }
}

/** p(next | ...) after each of `ids`, one eval per token. */
async function evalEach(session: Session, ids: readonly number[]): Promise<Float64Array[]> {
  const out: Float64Array[] = [];
  for (const id of ids) out.push(softmax(await session.eval([id])));
  return out;
}

/** The distributions at positions PREFILL-1 … LENGTH-1: one eval of the first PREFILL tokens, then one per token. */
async function prefillThenDecode(session: Session): Promise<Float64Array[]> {
  const first = softmax(await session.eval(tokens.slice(0, PREFILL)));
  return [first, ...(await evalEach(session, tokens.slice(PREFILL)))];
}

function report(label: string, comparison: { meanKl: number; maxKl: number; top1Agreement: number }): void {
  console.log(`41 ${label}: mean KL ${comparison.meanKl.toExponential(2)}, max KL ${comparison.maxKl.toExponential(2)}, top-1 ${comparison.top1Agreement}`);
}

describe("41 engine: sliding-window attention against the float64 reference", () => {
  it("the oracle can tell: with W = 8 the reference differs from full attention after position 8 (mean KL > 0.01)", () => {
    const comparison = compareDistributions(fullExpected.slice(WINDOW), windowedExpected.slice(WINDOW));
    report("reference W=8 vs full attention", comparison);
    expect(comparison.meanKl).toBeGreaterThan(0.01);
  });

  it("token-by-token eval with the file's window (batchSize 1: 8 slots, wrapping every 8 tokens) matches over 64 tokens: mean KL ≤ 1e-3", async () => {
    const actual = await withModel(windowedPath, {}, async (model) => {
      expect(model.info.slidingWindow).toBe(WINDOW);
      return evalEach(model.createSession({ batchSize: 1 }), tokens);
    });
    const comparison = compareDistributions(windowedExpected, actual);
    report("token-by-token, F16 KV", comparison);
    expect(comparison.meanKl).toBeLessThanOrEqual(1e-3);
    expect(comparison.top1Agreement).toBeGreaterThanOrEqual(0.97);
  });

  it("with an F32 KV cache, token-by-token eval matches the reference to float32 rounding (mean KL ≤ 1e-6)", async () => {
    const actual = await withModel(windowedPath, {}, (model) => evalEach(model.createSession({ batchSize: 1, kvCacheType: "f32" }), tokens));
    const comparison = compareDistributions(windowedExpected, actual);
    report("token-by-token, F32 KV", comparison);
    expect(comparison.meanKl).toBeLessThanOrEqual(1e-6);
    expect(comparison.top1Agreement).toBe(1);
  });

  it("one batched prefill of 48 tokens, then 16 single-token evals, matches at every position from the prefill's last: mean KL ≤ 1e-3", async () => {
    const actual = await withModel(windowedPath, {}, (model) => prefillThenDecode(model.createSession()));
    const comparison = compareDistributions(windowedExpected.slice(PREFILL - 1), actual);
    report("48-token prefill in one chunk", comparison);
    expect(comparison.meanKl).toBeLessThanOrEqual(1e-3);
    expect(comparison.top1Agreement).toBeGreaterThanOrEqual(0.97);
  });

  it("a 48-token prefill in chunks of 5 (12 slots: chunks cross the buffer's wrap-around), then single evals, matches: mean KL ≤ 1e-3", async () => {
    const actual = await withModel(windowedPath, {}, (model) => prefillThenDecode(model.createSession({ batchSize: 5 })));
    const comparison = compareDistributions(windowedExpected.slice(PREFILL - 1), actual);
    report("48-token prefill in chunks of 5", comparison);
    expect(comparison.meanKl).toBeLessThanOrEqual(1e-3);
    expect(comparison.top1Agreement).toBeGreaterThanOrEqual(0.97);
  });

  it("the slidingWindow load option on a file without a window gives the same logits, bit for bit, as the file's window", async () => {
    const run = (path: string, load: LoadOptions) =>
      withModel(path, load, async (model) => {
        expect(model.info.slidingWindow).toBe(WINDOW);
        const session = model.createSession({ batchSize: 5 });
        const logits = [Float32Array.from(await session.eval(tokens.slice(0, PREFILL)))];
        for (const id of tokens.slice(PREFILL)) logits.push(Float32Array.from(await session.eval([id])));
        return logits;
      });
    const fromFile = await run(windowedPath, {});
    const fromOption = await run(plainPath, { slidingWindow: WINDOW });
    expectSameLogits(fromOption, fromFile);
  });

  it("slidingWindow: null disables the file's window: the full-attention reference is matched and the windowed one is not", async () => {
    const actual = await withModel(windowedPath, { slidingWindow: null }, async (model) => {
      expect(model.info.slidingWindow).toBeNull();
      expect(model.createSession().contextSize).toBe(32);
      return evalEach(model.createSession({ contextSize: 32, kvCacheType: "f32" }), tokens.slice(0, 32));
    });
    const full = compareDistributions(fullExpected.slice(0, 32), actual);
    report("slidingWindow: null vs full attention", full);
    expect(full.meanKl).toBeLessThanOrEqual(1e-6);
    expect(compareDistributions(windowedExpected.slice(0, 32), actual).meanKl).toBeGreaterThan(0.01);
  });

  it("generate runs past the window, the buffer's wrap-around and the 32-position context (16 + 96 tokens) without error, choosing the reference's argmax", async () => {
    const prompt = tokens.slice(0, 16);
    const { result, position, contextSize } = await withModel(windowedPath, {}, async (model) => {
      const session = model.createSession({ batchSize: 4 }); // 11 slots
      const steps = session.generate(prompt, { maxTokens: 96, temperature: 0, logitBias: new Map([[model.tokenizer.eos!, -Infinity]]) });
      let step = await steps.next();
      while (!step.done) step = await steps.next();
      return { result: step.value, position: session.position, contextSize: session.contextSize };
    });
    expect(contextSize).toBe(Infinity);
    expect(result.stopReason).toBe("maxTokens");
    expect(result.tokens).toHaveLength(96);
    expect(position).toBe(16 + 96 - 1); // the last sampled token is returned, not evaluated
    const sequence = [...prompt, ...result.tokens];
    const { distributions } = teacherForcedDistributions(reference, sequence.slice(0, -1));
    let agree = 0;
    for (let i = 0; i < result.tokens.length; i++) {
      if (argmax(distributions[prompt.length - 1 + i]) === result.tokens[i]) agree++;
    }
    console.log(`41 greedy past the context: ${agree} of 96 tokens are the reference's argmax`);
    expect(agree / result.tokens.length).toBeGreaterThanOrEqual(0.97);
  });

  it("KV memory is O(W): stats().kvBytes with a window does not depend on contextSize, and is 2·layers·kvDim·(W + batchSize − 1) fp16 values", async () => {
    const windowed = await withModel(plainPath, { slidingWindow: WINDOW }, async (model) => ({
      small: model.createSession({ contextSize: 64 }).stats(),
      large: model.createSession({ contextSize: 2048 }).stats(),
      smallBatch: model.createSession({ contextSize: 2048, batchSize: 4 }).stats(),
    }));
    const full = await withModel(plainPath, {}, async (model) => ({
      small: model.createSession({ contextSize: 64 }).stats(),
      large: model.createSession({ contextSize: 2048 }).stats(),
    }));
    expect(windowed.small.slidingWindow).toBe(WINDOW);
    expect(windowed.large.kvBytes).toBe(windowed.small.kvBytes);
    expect(windowed.large.kvBytes).toBe(2 * SHAPE.nLayers * KV_DIM * (WINDOW + 512 - 1) * 2);
    expect(windowed.smallBatch.kvBytes).toBe(2 * SHAPE.nLayers * KV_DIM * (WINDOW + 4 - 1) * 2);
    expect(full.small.slidingWindow).toBeNull();
    expect(full.small.kvBytes).toBe(2 * SHAPE.nLayers * KV_DIM * 64 * 2);
    expect(full.large.kvBytes).toBe(32 * full.small.kvBytes);
  });

  it("rewinds on a wrapped window add up: a rewind past what the buffer still holds is refused, and every allowed one leaves exact logits", async () => {
    await withModel(plainPath, { slidingWindow: WINDOW }, async (model) => {
      // batchSize 4: W + 3 = 11 slots. After 24 tokens they hold positions 13..23; a chunk starting at p needs keys
      // from p − 7 on, so the cache can go back to position 20 and no further.
      const session = model.createSession({ batchSize: 4, kvCacheType: "f32" });
      for (const id of tokens.slice(0, 24)) await session.eval([id]);
      session.rewind(3);
      expect(() => session.rewind(2)).toThrow(RangeError);
      session.rewind(1);
      expect(() => session.rewind(1)).toThrow(/at most 0 tokens/);
      expect(session.position).toBe(20);
      const afterRewind = Float32Array.from(await session.eval([tokens[20]]));

      const fresh = model.createSession({ batchSize: 4, kvCacheType: "f32" });
      for (const id of tokens.slice(0, 20)) await fresh.eval([id]);
      expectSameLogits(afterRewind, await fresh.eval([tokens[20]]));
    });
  });
});
