// Evaluation runs off the JS thread, stops when asked, and disposal is safe at any moment (issue 4, item 5).
import { monitorEventLoopDelay } from "node:perf_hooks";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { AbortError, DisposedError, Mixtral, type Session } from "../lib/index.js";
import { cachedTestModel } from "../lib/testing/test-model.js";
import { expectSameLogits } from "./helpers/logits.js";

// Four layers, so "within one layer" is a quarter of a chunk; an 8192-position context for long prefills.
const SHAPE = { nEmbd: 256, nFf: 512, nLayers: 4, nHeads: 8, nHeadsKv: 2, nExperts: 8, nExpertsUsed: 2, contextLength: 8192 } as const;
// Attention over 8192 positions makes one chunk take seconds on a 2-core machine (about 2.7 s here; 0.6-0.9 s at 3072
// positions since attention reads each KV row once per head group).
const LONG = Array.from({ length: 8192 }, (_, i) => (i * 7919 + 13) % 32000);
const PROMPT = "And God said, Let the waters under the heaven be gathered together unto one place";

let path: string;
let model: Mixtral;

beforeAll(async () => {
  path = await cachedTestModel(SHAPE);
  model = await Mixtral.load(path, { threads: 2 });
});

afterAll(() => model?.dispose());

async function caught(work: () => Promise<unknown>): Promise<unknown> {
  try {
    await work();
  } catch (error) {
    return error;
  }
  throw new Error("expected the call to throw");
}

function expectAbortError(error: unknown): void {
  expect(error).toBeInstanceOf(AbortError);
  expect((error as AbortError).name).toBe("AbortError");
  expect((error as AbortError).code).toBe("ABORT_ERR");
}

function expectDisposedError(error: unknown): void {
  expect(error).toBeInstanceOf(DisposedError);
  expect((error as DisposedError).code).toBe("DISPOSED");
}

/** The logits after `ids` in a new session that gets them the same way: the first `batched` in one eval, then one at a time. */
async function freshLogits(ids: readonly number[], batched: number): Promise<Float32Array> {
  const session = model.createSession();
  try {
    let logits = await session.eval(ids.slice(0, batched));
    for (const id of ids.slice(batched)) logits = await session.eval([id]);
    return Float32Array.from(logits);
  } finally {
    session.dispose();
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("44 engine: threads, the event loop, abort and dispose", () => {
  it("the event loop keeps turning during a multi-second eval (an 8192-token prefill in one chunk): lag below 50 ms (99th percentile)", async () => {
    const session = model.createSession({ contextSize: LONG.length, batchSize: LONG.length });
    const resolution = 10;
    const delay = monitorEventLoopDelay({ resolution });
    delay.enable();
    const start = performance.now();
    await session.eval(LONG);
    const elapsed = performance.now() - start;
    delay.disable();
    session.dispose();
    // Each sample is the time between two timer ticks, so the lag is what exceeds the resolution.
    const p99Lag = delay.percentile(99) / 1e6 - resolution;
    const maxLag = delay.max / 1e6 - resolution;
    console.log(`44 event-loop lag during a ${elapsed.toFixed(0)} ms eval: p99 ${p99Lag.toFixed(1)} ms, max ${maxLag.toFixed(1)} ms over ${delay.count} ticks`);
    expect(elapsed).toBeGreaterThan(1000); // long enough for the lag to mean something
    expect(delay.count).toBeGreaterThan(elapsed / resolution / 4);
    // The bound is on the 99th percentile: with other jobs loading this 2-core machine, the scheduler alone
    // stalls the JS thread for up to ~100 ms now and then, even with one compute thread. A loop blocked by the
    // eval, or by one of its layers (about 700 ms each here), still fails the bound on the maximum.
    expect(p99Lag).toBeLessThan(50);
    expect(maxLag).toBeLessThan(250);
  });

  it("an abort during a one-chunk prefill rejects with AbortError before the chunk ends, caches nothing, and the session then computes like a fresh one", async () => {
    const session = model.createSession({ contextSize: LONG.length, batchSize: LONG.length });
    const controller = new AbortController();
    const evaluation = caught(() => session.eval(LONG, { signal: controller.signal }));
    await sleep(300);
    const abortedAt = performance.now();
    controller.abort();
    const error = await evaluation;
    console.log(`44 a one-chunk prefill of 4 layers stopped ${(performance.now() - abortedAt).toFixed(0)} ms after abort()`);
    // A single chunk that rejects was stopped between its layers: an abort seen only between chunks would resolve.
    expectAbortError(error);
    expect(session.position).toBe(0);
    const next = LONG.slice(0, 64);
    expectSameLogits(await session.eval(next), await freshLogits(next, next.length));
    session.dispose();
  });

  it("abort() inside the generate loop stops it before another token: AbortError, and the cache holds exactly the evaluated tokens", async () => {
    const session = model.createSession();
    const prompt = model.tokenizer.encode(PROMPT);
    const controller = new AbortController();
    const yielded: number[] = [];
    const error = await caught(async () => {
      for await (const { token } of session.generate(prompt, { maxTokens: 100, temperature: 0, signal: controller.signal })) {
        yielded.push(token);
        if (yielded.length === 5) controller.abort();
      }
    });
    expectAbortError(error);
    expect(yielded).toHaveLength(5);
    const evaluated = [...prompt, ...yielded.slice(0, -1)];
    expect(Array.from(session.tokens)).toEqual(evaluated);
    const continued = Float32Array.from(await session.eval([yielded[4]]));
    expectSameLogits(continued, await freshLogits([...evaluated, yielded[4]], prompt.length));
    session.dispose();
  });

  it("an abort while a decode step is in flight ends generate within that step, with the cache consistent with what was yielded", async () => {
    const session = model.createSession();
    const prompt = model.tokenizer.encode(PROMPT);
    const controller = new AbortController();
    const yielded: number[] = [];
    const error = await caught(async () => {
      for await (const { token } of session.generate(prompt, { maxTokens: 100, temperature: 0, signal: controller.signal })) {
        yielded.push(token);
        if (yielded.length === 5) setImmediate(() => controller.abort()); // fires while the next eval runs
      }
    });
    expectAbortError(error);
    // Either the step in flight stopped (5 tokens) or it had just finished and the next one never started (6).
    expect(yielded.length === 5 || yielded.length === 6).toBe(true);
    expect(Array.from(session.tokens)).toEqual([...prompt, ...yielded.slice(0, -1)]);
    const next = yielded[yielded.length - 1];
    const expected = await freshLogits([...session.tokens, next], prompt.length);
    expectSameLogits(await session.eval([next]), expected);
    session.dispose();
  });

  it("two sessions of one model evaluating at the same time give, bit for bit, what each gives alone", async () => {
    const first = LONG.slice(0, 200), second = LONG.slice(500, 700);
    const run = async (ids: number[]) => {
      const session = model.createSession();
      const logits = [Float32Array.from(await session.eval(ids.slice(0, 150)))];
      for (const id of ids.slice(150)) logits.push(Float32Array.from(await session.eval([id])));
      session.dispose();
      return logits;
    };
    const together = await Promise.all([run(first), run(second)]);
    expectSameLogits(together[0], await run(first));
    expectSameLogits(together[1], await run(second));
  });

  it("session.dispose() during generation ends it with DisposedError, every later call throws DisposedError, and the model can be disposed at once", async () => {
    const own = await Mixtral.load(path, { threads: 2 });
    const session = own.createSession();
    let count = 0;
    const error = await caught(async () => {
      for await (const _step of session.generate(PROMPT, { maxTokens: 100, temperature: 0 })) {
        if (++count === 3) setImmediate(() => session.dispose());
      }
    });
    expectDisposedError(error);
    expect(count === 3 || count === 4).toBe(true);
    expect(session.isDisposed).toBe(true);
    for (const call of [
      () => session.eval([1]),
      () => session.generate("more"),
      () => session.rewind(0),
      () => session.reset(),
      () => session.routing(),
      () => session.stats(),
    ]) {
      expect(call).toThrow(DisposedError);
    }
    // The native model refuses to unmap while a session's cache is alive: resolving proves it was freed.
    await expect(own.dispose()).resolves.toBeUndefined();
  });

  it("session.dispose() with an eval in flight, then model.dispose() straight away: the eval rejects with DisposedError and the model is disposed", async () => {
    const own = await Mixtral.load(path, { threads: 2 });
    const session = own.createSession({ contextSize: 1024, batchSize: 1024 });
    const evaluation = caught(() => session.eval(LONG.slice(0, 1024)));
    await sleep(50); // the native eval is running
    session.dispose();
    await expect(own.dispose()).resolves.toBeUndefined();
    expectDisposedError(await evaluation);
    expect(own.isDisposed).toBe(true);
  });

  it("model.dispose() with open sessions disposes them: the eval in flight rejects with DisposedError, idle sessions and the model refuse further calls", async () => {
    const own = await Mixtral.load(path, { threads: 2 });
    const busy = own.createSession({ contextSize: 1024, batchSize: 1024 });
    const idle = own.createSession();
    await idle.eval([1, 415, 2936]);
    const evaluation = caught(() => busy.eval(LONG.slice(0, 1024)));
    await sleep(50);
    await own.dispose();
    expectDisposedError(await evaluation);
    expect(busy.isDisposed).toBe(true);
    expect(idle.isDisposed).toBe(true);
    expect(own.isDisposed).toBe(true);
    expect(() => idle.eval([1])).toThrow(DisposedError);
    expect(() => own.createSession()).toThrow(DisposedError);
    await expect(own.dispose()).resolves.toBeUndefined(); // twice is fine
  });

  it("`await using` disposes the model and `using` the session at the end of their blocks", async () => {
    let outerModel: Mixtral;
    let outerSession: Session;
    {
      await using scoped = await Mixtral.load(path, { threads: 2 });
      outerModel = scoped;
      {
        using session = scoped.createSession();
        outerSession = session;
        await session.eval([1, 415]);
      }
      expect(outerSession.isDisposed).toBe(true);
      expect(outerModel.isDisposed).toBe(false);
    }
    expect(outerModel.isDisposed).toBe(true);
  });
});
