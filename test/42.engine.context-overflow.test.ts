// Without a sliding window the KV cache holds contextSize positions; going past it is a typed error that leaves
// the session as it was (issue 4, item 3).
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { ContextOverflowError, Mixtral, type Session } from "../lib/index.js";
import { cachedTestModel } from "../lib/testing/test-model.js";
import { expectSameLogits } from "./helpers/logits.js";

const SHAPE = { nEmbd: 128, nFf: 256, nLayers: 2, nHeads: 4, nHeadsKv: 2, nExperts: 8, nExpertsUsed: 2 } as const;
const CONTEXT = 16;
const TEXT = "In the beginning God created the heaven and the earth. And the earth was without form, and void.";

let model: Mixtral;
let tokens: number[];

beforeAll(async () => {
  model = await Mixtral.load(await cachedTestModel(SHAPE), { threads: 2 });
  tokens = Array.from(model.tokenizer.encode(TEXT));
  expect(tokens.length).toBeGreaterThan(CONTEXT);
});

afterAll(() => model.dispose());

function expectOverflow(error: unknown): void {
  expect(error).toBeInstanceOf(ContextOverflowError);
  expect((error as ContextOverflowError).code).toBe("CONTEXT_OVERFLOW");
  expect((error as ContextOverflowError).name).toBe("ContextOverflowError");
}

async function caught(work: () => Promise<unknown>): Promise<unknown> {
  try {
    await work();
  } catch (error) {
    return error;
  }
  throw new Error("expected the call to throw");
}

/** Evaluates `ids` as a session that got them in the same calls would: the first `batched` in one eval, then one by one. */
async function evalLikeThat(session: Session, ids: readonly number[], batched: number): Promise<Float32Array> {
  let logits = await session.eval(ids.slice(0, batched));
  for (const id of ids.slice(batched)) logits = await session.eval([id]);
  return Float32Array.from(logits);
}

describe("42 engine: a full cache without a window raises ContextOverflowError and the session stays usable", () => {
  it("one eval of contextSize + 1 tokens into an empty session throws ContextOverflowError and caches nothing", async () => {
    const session = model.createSession({ contextSize: CONTEXT });
    expect(session.contextSize).toBe(CONTEXT);
    expectOverflow(await caught(() => session.eval(tokens.slice(0, CONTEXT + 1))));
    expect(session.position).toBe(0);
    const logits = Float32Array.from(await session.eval(tokens.slice(0, CONTEXT)));
    expect(session.position).toBe(CONTEXT);
    expectSameLogits(logits, await model.createSession({ contextSize: CONTEXT }).eval(tokens.slice(0, CONTEXT)));
  });

  it("an eval that would overflow a partly filled cache throws, keeps the cached tokens and logits, and exactly the rest still fits", async () => {
    const session = model.createSession({ contextSize: CONTEXT });
    const before = Float32Array.from(await session.eval(tokens.slice(0, 10)));
    expectOverflow(await caught(() => session.eval(tokens.slice(10, 17))));
    expect(Array.from(session.tokens)).toEqual(tokens.slice(0, 10));
    const first = await session.generate([], { maxTokens: 1, temperature: 0 }).next(); // continues from the cached logits
    expect(first.value).toMatchObject({ token: before.indexOf(Math.max(...before)) });
    expect(session.position).toBe(10);
    await session.eval(tokens.slice(10, 16));
    expect(session.position).toBe(CONTEXT);
    expectOverflow(await caught(() => session.eval([tokens[16]])));
  });

  it("generate running into the end throws ContextOverflowError after filling the cache; rewind, then eval gives a fresh run's logits", async () => {
    const session = model.createSession({ contextSize: CONTEXT });
    const prompt = tokens.slice(0, 10);
    const yielded: number[] = [];
    const error = await caught(async () => {
      for await (const { token } of session.generate(prompt, { maxTokens: 32, temperature: 0, logitBias: new Map([[model.tokenizer.eos!, -Infinity]]) })) {
        yielded.push(token);
      }
    });
    expectOverflow(error);
    // Six sampled tokens fill positions 10..15; the seventh is sampled but finds no room.
    expect(yielded).toHaveLength(CONTEXT - prompt.length + 1);
    expect(session.position).toBe(CONTEXT);
    expect(Array.from(session.tokens)).toEqual([...prompt, ...yielded.slice(0, -1)]);

    session.rewind(4);
    const next = tokens[20];
    const continued = Float32Array.from(await session.eval([next]));
    const kept = [...prompt, ...yielded.slice(0, 2), next];
    expectSameLogits(continued, await evalLikeThat(model.createSession({ contextSize: CONTEXT }), kept, prompt.length));
  });

  it("a prompt longer than the context makes generate throw ContextOverflowError before any token, and the session stays empty", async () => {
    const session = model.createSession({ contextSize: CONTEXT });
    const steps = session.generate(TEXT, { maxTokens: 4 });
    expectOverflow(await caught(() => steps.next()));
    expect(session.position).toBe(0);
    expect((await session.generate(tokens.slice(0, 4), { maxTokens: 2, temperature: 0 }).next()).done).toBe(false);
  });
});
