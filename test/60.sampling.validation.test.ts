import { describe, expect, it } from "vitest";
import { createSampler, sample, samplers, SAMPLING_OPTION_NAMES, type SamplingOptions } from "../lib/sampling/index.js";

const logits = Float32Array.from({ length: 100 }, (_, i) => Math.sin(i));

describe("60 sampling: bad options fail at the edge with the option's name and value", () => {
  it("an unknown option name is a TypeError listing every valid name and suggesting the closest", () => {
    const call = () => sample(logits, { temprature: 0.5 } as SamplingOptions);
    expect(call).toThrow(TypeError);
    expect(call).toThrow(/unknown option "temprature" \(did you mean "temperature"\?\)/);
    for (const name of SAMPLING_OPTION_NAMES) expect(call).toThrow(new RegExp(`\\b${name}\\b`));
    expect(() => createSampler({ top_k: 5 } as SamplingOptions)).toThrow(/did you mean "topK"/);
    expect(() => createSampler({ banana: 1 } as SamplingOptions)).toThrow(/unknown option "banana"; valid options:/);
  });

  const bad: [Partial<Record<keyof SamplingOptions, unknown>>, RegExp][] = [
    [{ temperature: NaN }, /options\.temperature must be a finite number; got NaN/],
    [{ temperature: -0.1 }, /options\.temperature must be ≥ 0 .*got -0\.1/],
    [{ temperature: Infinity }, /options\.temperature must be a finite number; got Infinity/],
    [{ topK: -1 }, /options\.topK must be an integer ≥ 0; got -1/],
    [{ topK: 2.5 }, /options\.topK must be an integer ≥ 0; got 2\.5/],
    [{ topP: 1.5 }, /options\.topP must be in \[0, 1\].*got 1\.5/],
    [{ topP: -0.01 }, /options\.topP must be in \[0, 1\].*got -0\.01/],
    [{ minP: 2 }, /options\.minP must be in \[0, 1\].*got 2/],
    [{ typicalP: NaN }, /options\.typicalP must be a finite number; got NaN/],
    [{ repeatPenalty: 0 }, /options\.repeatPenalty must be > 0.*got 0/],
    [{ frequencyPenalty: Infinity }, /options\.frequencyPenalty must be a finite number; got Infinity/],
    [{ presencePenalty: NaN }, /options\.presencePenalty must be a finite number; got NaN/],
    [{ penaltyLastN: -1 }, /options\.penaltyLastN must be an integer ≥ 0; got -1/],
    [{ seed: -1 }, /options\.seed must be an integer in \[0, 2\^53 - 1\]; got -1/],
    [{ seed: 1.5 }, /options\.seed must be an integer.*got 1\.5/],
    [{ logitBias: new Map([[3, NaN]]) }, /options\.logitBias for token 3 must be a finite number or -Infinity; got NaN/],
    [{ logitBias: new Map([[3, Infinity]]) }, /options\.logitBias for token 3 must be .*got Infinity/],
    [{ logitBias: new Map([[-2, 1]]) }, /options\.logitBias has a key that is not a token id.*-2/],
  ];
  for (const [options, message] of bad) {
    it(`${JSON.stringify(options, (_, v) => (typeof v === "number" && !Number.isFinite(v) ? String(v) : v instanceof Map ? [...v] : v))} is a RangeError naming it`, () => {
      expect(() => sample(logits, options as SamplingOptions)).toThrow(RangeError);
      expect(() => sample(logits, options as SamplingOptions)).toThrow(message);
      expect(() => createSampler(options as SamplingOptions)).toThrow(message);
    });
  }

  it("wrong types are TypeErrors: a string temperature, a plain-object logitBias, a non-function sampler, null options", () => {
    expect(() => sample(logits, { temperature: "hot" } as unknown as SamplingOptions)).toThrow(/options\.temperature must be a number; got "hot"/);
    expect(() => sample(logits, { logitBias: { 3: 1 } } as unknown as SamplingOptions)).toThrow(/options\.logitBias must be a Map/);
    expect(() => sample(logits, { sampler: 5 } as unknown as SamplingOptions)).toThrow(/options\.sampler must be a function/);
    expect(() => sample(logits, null as unknown as SamplingOptions)).toThrow(TypeError);
  });

  it("a logitBias token outside the vocabulary is a RangeError when the vocabulary size is known", () => {
    expect(() => sample(logits, { logitBias: new Map([[100, 1]]) })).toThrow(/token 100, outside the vocabulary \[0, 100\)/);
    const sampler = createSampler({ logitBias: new Map([[500, -Infinity]]) });
    expect(() => sampler.sample(logits)).toThrow(RangeError);
  });

  it("bad logits: not a Float32Array, empty, containing NaN or +Infinity, or all masked", () => {
    expect(() => sample([1, 2] as unknown as Float32Array)).toThrow(TypeError);
    expect(() => sample(new Float32Array(0))).toThrow(/must not be empty/);
    const withNaN = Float32Array.from(logits);
    withNaN[17] = NaN;
    expect(() => sample(withNaN, { seed: 1 })).toThrow(/logits\[17\] is NaN/);
    expect(() => sample(withNaN, { temperature: 0 })).toThrow(/logits\[17\] is NaN/);
    expect(() => sample(withNaN, { topK: 0, seed: 1 })).toThrow(/logits\[17\] is NaN/);
    const withInfinity = Float32Array.from(logits);
    withInfinity[3] = Infinity;
    expect(() => sample(withInfinity, { seed: 1 })).toThrow(/logits\[3\] is Infinity/);
    expect(() => sample(new Float32Array(10).fill(-Infinity), { seed: 1 })).toThrow(/every token is -Infinity/);
    expect(() => sample(new Float32Array(10).fill(-Infinity), { temperature: 0 })).toThrow(/every token is -Infinity/);
  });

  it("a sampler used with one vocabulary rejects logits of another length", () => {
    const sampler = createSampler({ seed: 1 });
    sampler.sample(logits);
    expect(() => sampler.sample(new Float32Array(99))).toThrow(/length 99; this sampler was first used with 100/);
  });

  it("context: unknown keys, bad previous tokens and a random without nextFloat are rejected", () => {
    expect(() => sample(logits, {}, { previousTokenz: [] } as never)).toThrow(/did you mean "previousTokens"/);
    expect(() => sample(logits, { repeatPenalty: 1.1 }, { previousTokens: [1, 100] })).toThrow(/previousTokens\[1\] must be a token id, an integer in \[0, 100\); got 100/);
    expect(() => sample(logits, {}, { random: {} as never })).toThrow(/nextFloat/);
    expect(() => createSampler().accept(-3)).toThrow(RangeError);
  });

  it("pure samplers validate their parameters", () => {
    expect(() => samplers.topK(logits, -1)).toThrow(/k must be an integer ≥ 0; got -1/);
    expect(() => samplers.topP(logits, 1.2)).toThrow(/p must be a number in \[0, 1\]; got 1\.2/);
    expect(() => samplers.minP(logits, NaN)).toThrow(RangeError);
    expect(() => samplers.temperature(logits, -1)).toThrow(/t must be a finite number ≥ 0; got -1/);
    expect(() => samplers.penalties(logits, [0], { repeatPenalty: 0 })).toThrow(/repeatPenalty must be a finite number > 0/);
    expect(() => samplers.topK(logits, 3, new Float32Array(5))).toThrow(/out must be a Float32Array of length 100/);
  });
});

describe("60 sampling: a custom sampler is called with the adjusted logits and its answer is checked", () => {
  it("receives bias- and penalty-adjusted logits, the window and a seeded random; its token is returned", () => {
    let seen: { biased: number; window: readonly number[]; u: number } | undefined;
    const sampler = createSampler({
      seed: 3,
      logitBias: new Map([[4, 10]]),
      sampler: (adjusted, context) => {
        seen = { biased: adjusted[4], window: context.previousTokens, u: context.random.nextFloat() };
        return 4;
      },
    });
    sampler.accept([1, 2]);
    expect(sampler.sample(logits)).toBe(4);
    expect(seen!.biased).toBeCloseTo(logits[4] + 10, 5);
    expect(seen!.window).toEqual([1, 2]);
    const again = createSampler({ seed: 3, sampler: (_, context) => (context.random.nextFloat() === seen!.u ? 0 : 1) });
    expect(again.sample(logits)).toBe(0);
  });

  for (const [returned, pattern] of [
    [1.5, /returned 1\.5; it must return a token id, an integer in \[0, 100\)/],
    [-1, /returned -1/],
    [100, /returned 100/],
    [NaN, /returned NaN/],
    ["3", /returned 3; it must return/],
  ] as const) {
    it(`returning ${String(returned)} (${typeof returned}) is a RangeError`, () => {
      expect(() => sample(logits, { sampler: () => returned as number })).toThrow(RangeError);
      expect(() => sample(logits, { sampler: () => returned as number })).toThrow(pattern);
    });
  }

  it("returning a masked or banned token is a RangeError", () => {
    const masked = Float32Array.from(logits);
    masked[9] = -Infinity;
    expect(() => sample(masked, { sampler: () => 9 })).toThrow(/token 9, which is masked or banned/);
    expect(() => sample(logits, { sampler: () => 8, logitBias: new Map([[8, -Infinity]]) })).toThrow(/token 8, which is masked/);
  });

  it("combining it with the options it replaces is a TypeError", () => {
    expect(() => createSampler({ sampler: () => 0, temperature: 0.5, topK: 3 })).toThrow(/options\.sampler replaces temperature, topK/);
  });
});
