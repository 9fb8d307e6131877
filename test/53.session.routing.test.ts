import { mkdirSync } from "node:fs";
import { join } from "node:path";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { Mixtral } from "../lib/model.js";
import type { Session } from "../lib/session.js";
import { cachedTestModel } from "../lib/testing/test-model.js";
import { writeTinyModel } from "./helpers/tiny-model.js";

const PROMPT = "In the beginning God created the heaven and the earth. And the earth was without form, and void.";

let path: string;
let model: Mixtral;
let prompt: Int32Array;

beforeAll(async () => {
  path = await cachedTestModel({});
  model = await Mixtral.load(path, { threads: 1 });
  prompt = model.tokenizer.encode(PROMPT);
});

afterAll(async () => {
  await model?.dispose();
});

function totals(session: Session): number[] {
  return session.routing().layers.map((layer) => layer.counts.reduce((sum, c) => sum + c, 0));
}

describe("53 session routing telemetry", () => {
  it("routing() has one entry per layer and expert, and the counts sum to tokens × experts per token", async () => {
    using session = model.createSession();
    await session.eval(prompt);
    const { layers } = session.routing();
    expect(layers).toHaveLength(model.info.nLayers);
    for (const layer of layers) expect(layer.counts).toHaveLength(model.info.nExperts);
    expect(totals(session)).toEqual(Array(model.info.nLayers).fill(prompt.length * 2));
    await session.eval([100, 200, 300]);
    expect(totals(session)).toEqual(Array(model.info.nLayers).fill((prompt.length + 3) * 2));
    session.reset();
    expect(totals(session)).toEqual(Array(model.info.nLayers).fill(0));
  });

  it("the counts do not depend on how the tokens were batched", async () => {
    using batched = model.createSession();
    await batched.eval(prompt);
    using stepwise = model.createSession();
    for (const token of prompt) await stepwise.eval([token]);
    expect(stepwise.routing()).toEqual(batched.routing());
  });

  it("generate's onRouting reports each layer after each evaluation with the session's experts per token", async () => {
    using session = model.createSession({ expertsPerToken: 1 });
    expect(session.expertsPerToken).toBe(1);
    const calls: { layer: number; experts: readonly number[]; weights: readonly number[] }[] = [];
    const steps = session.generate(prompt, { temperature: 0, maxTokens: 3, onRouting: (layer, experts, weights) => calls.push({ layer, experts, weights }) });
    for await (const _ of steps);
    expect(calls.length).toBe(model.info.nLayers * 3);
    for (const call of calls) {
      expect(call.experts).toHaveLength(1);
      expect(call.weights).toEqual([1]);
    }
  });
});

describe("53 expertsPerToken override", () => {
  it("setExpertsPerToken(1) gives the logits of a model loaded with expertsPerToken 1", async () => {
    using session = model.createSession();
    session.setExpertsPerToken(1);
    const runtime = Float32Array.from(await session.eval(prompt));
    const loaded = await Mixtral.load(path, { threads: 1, expertsPerToken: 1 });
    try {
      using reference = loaded.createSession();
      expect(Array.from(await reference.eval(prompt))).toEqual(Array.from(runtime));
    } finally {
      await loaded.dispose();
    }
    using top2 = model.createSession();
    expect(Array.from(await top2.eval(prompt))).not.toEqual(Array.from(runtime));
  });

  it("counts follow the k in use: top-1 tokens add one selection each, and k can go back up to the load-time value", async () => {
    using session = model.createSession();
    await session.eval(prompt);
    session.setExpertsPerToken(1);
    await session.eval([500, 600]);
    expect(totals(session)).toEqual(Array(model.info.nLayers).fill(prompt.length * 2 + 2));
    session.setExpertsPerToken(2);
    await session.eval([700]);
    expect(totals(session)).toEqual(Array(model.info.nLayers).fill(prompt.length * 2 + 4));
  });

  it("k is validated: an integer in [1, load-time k], not while evaluating, never on a dense model", async () => {
    using session = model.createSession();
    expect(() => session.setExpertsPerToken(0)).toThrow(/k must be between 1 and 2; got 0/);
    expect(() => session.setExpertsPerToken(3)).toThrow(RangeError);
    expect(() => session.setExpertsPerToken(1.5)).toThrow(RangeError);
    expect(() => session.setExpertsPerToken("1" as never)).toThrow(TypeError);
    expect(() => model.createSession({ expertsPerToken: 4 })).toThrow(/options\.expertsPerToken/);
    const pending = session.eval(prompt);
    expect(() => session.setExpertsPerToken(1)).toThrow(expect.objectContaining({ code: "SESSION_BUSY" }));
    await pending;
    expect(session.expertsPerToken).toBe(2);

    const cache = join(import.meta.dirname, "..", ".cache", "session-routing");
    mkdirSync(cache, { recursive: true });
    const densePath = join(cache, "dense.gguf");
    await writeTinyModel(densePath, { layout: "dense" });
    const dense = await Mixtral.load(densePath, { threads: 1 });
    try {
      using denseSession = dense.createSession();
      expect(() => denseSession.setExpertsPerToken(1)).toThrow(/dense/);
      expect(() => dense.createChat({ expertsPerToken: 1 })).toThrow(/dense/);
      expect(denseSession.routing()).toEqual({ layers: [] });
    } finally {
      await dense.dispose();
    }
  });
});
