import { describe, expect, it } from "vitest";
import { createRandom, createSampler, sample, samplers } from "../lib/sampling/index.js";
import {
  bruteMinP,
  brutePenalties,
  bruteTopK,
  bruteTopP,
  bruteTypicalP,
  keptIds,
  randomLogits,
  rankByLogit,
  softmaxOver,
} from "./helpers/brute-force-sampling.js";

const SIZES = [1, 2, 7, 100, 1000, 32000];

describe("60 sampling: each filter keeps exactly the set its definition names", () => {
  it("topK keeps the k highest logits (ties: lower id first) for every k, with and without ties", () => {
    let checked = 0;
    for (const size of SIZES) {
      for (const quantum of [0, 0.25]) {
        const logits = randomLogits(size, size * 7 + (quantum ? 1 : 0), 4, quantum);
        for (const k of [0, 1, 2, 3, 40, 64, 65, 257, size - 1, size, size + 5]) {
          if (k < 0) continue;
          expect(keptIds(samplers.topK(logits, k)), `size ${size} k ${k} quantum ${quantum}`).toEqual(bruteTopK(logits, k));
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(100);
  });

  it("topP keeps the shortest highest-first prefix whose mass reaches p", () => {
    let checked = 0;
    for (const size of SIZES) {
      for (const scale of [0.5, 4, 12]) {
        const logits = randomLogits(size, size + scale * 100, scale);
        for (const p of [0, 0.05, 0.3, 0.5, 0.9, 0.95, 0.999, 1]) {
          const expected = bruteTopP(logits, p);
          if (expected === undefined) continue;
          expect(keptIds(samplers.topP(logits, p)), `size ${size} scale ${scale} p ${p}`).toEqual(expected);
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(100);
  });

  it("minP keeps tokens with probability ≥ p × the top probability", () => {
    let checked = 0;
    for (const size of SIZES) {
      for (const scale of [0.5, 4, 12]) {
        const logits = randomLogits(size, size * 3 + scale, scale);
        for (const p of [0, 0.01, 0.05, 0.2, 0.5, 0.9, 1]) {
          const expected = bruteMinP(logits, p);
          if (expected === undefined) continue;
          expect(keptIds(samplers.minP(logits, p)), `size ${size} scale ${scale} p ${p}`).toEqual(expected);
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(100);
  });

  it("typicalP keeps the most typical tokens (|−ln p − H| ascending) until the mass exceeds p", () => {
    let checked = 0;
    for (const size of [2, 7, 100, 1000, 5000]) {
      for (const scale of [0.5, 4]) {
        const logits = randomLogits(size, size * 11 + scale, scale);
        for (const p of [0, 0.2, 0.5, 0.9, 0.95, 1]) {
          const expected = bruteTypicalP(logits, p);
          if (expected === undefined) continue;
          expect(keptIds(samplers.typicalP(logits, p)), `size ${size} scale ${scale} p ${p}`).toEqual(expected);
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(50);
  });

  it("topP 0 and typicalP 0 keep exactly one token, whatever the selection's pivots do", () => {
    for (let seed = 1; seed <= 300; seed++) {
      const logits = randomLogits(40 + seed, seed, 3);
      expect(keptIds(samplers.topP(logits, 0)), `seed ${seed}`).toEqual([rankByLogit(logits)[0]]);
      expect(keptIds(samplers.typicalP(logits, 0)), `seed ${seed}`).toEqual(bruteTypicalP(logits, 0));
    }
  });

  it("filters skip masked (-Infinity) tokens and keep the logits of the tokens they keep", () => {
    const logits = randomLogits(1000, 5);
    for (let id = 0; id < 1000; id += 3) logits[id] = -Infinity;
    const kept = samplers.topK(logits, 50);
    for (const id of keptIds(kept)) {
      expect(logits[id]).not.toBe(-Infinity);
      expect(kept[id]).toBe(logits[id]);
    }
    expect(keptIds(kept)).toEqual(bruteTopK(logits, 50));
    expect(keptIds(samplers.minP(logits, 0.3))).toEqual(bruteMinP(logits, 0.3));
  });

  it("filters leave their input untouched and write into `out` (which may be the input) when given", () => {
    const logits = randomLogits(500, 9);
    const copy = Float32Array.from(logits);
    const out = new Float32Array(500);
    expect(samplers.topP(logits, 0.5, out)).toBe(out);
    expect(logits).toEqual(copy);
    const inPlace = Float32Array.from(logits);
    samplers.topP(inPlace, 0.5, inPlace);
    expect(inPlace).toEqual(out);
  });
});

describe("60 sampling: penalties, bias and temperature follow llama.cpp's formulas", () => {
  it("repeat/frequency/presence penalties match the formula for positive, negative and repeated tokens", () => {
    const logits = randomLogits(200, 3, 5);
    const window = [5, 5, 5, 9, 17, 17, 150, 199, 0];
    for (const [repeat, frequency, presence] of [
      [1.1, 0, 0],
      [1.3, 0.2, 0.5],
      [0.8, -0.4, 0.1],
      [1, 1, 0],
    ]) {
      const got = samplers.penalties(logits, window, { repeatPenalty: repeat, frequencyPenalty: frequency, presencePenalty: presence });
      const expected = brutePenalties(logits, window, repeat, frequency, presence);
      for (let id = 0; id < 200; id++) expect(got[id]).toBeCloseTo(expected[id], 5);
    }
    const negative = samplers.penalties(Float32Array.of(-2, 2), [0, 1], { repeatPenalty: 2 });
    expect(Array.from(negative)).toEqual([-4, 1]);
  });

  it("the sampler applies penalties only to the last penaltyLastN tokens it saw", () => {
    // Token 0 leads by 1; a presence penalty of 2 on it makes token 1 the greedy pick, but only inside the window.
    const logits = Float32Array.of(3, 2, 0, 0);
    const sampler = createSampler({ temperature: 0, presencePenalty: 2, penaltyLastN: 2 });
    sampler.accept(0);
    expect(sampler.sample(logits)).toBe(1);
    sampler.accept([3, 3]); // pushes token 0 out of the window of 2
    expect(sampler.previousTokens()).toEqual([3, 3]);
    expect(sampler.sample(logits)).toBe(0);
  });

  it("logitBias adds its values and -Infinity bans a token", () => {
    const logits = randomLogits(100, 4);
    const biased = samplers.logitBias(logits, new Map([[3, 1.5], [50, -Infinity], [99, -2]]));
    expect(biased[3]).toBeCloseTo(logits[3] + 1.5, 6);
    expect(biased[50]).toBe(-Infinity);
    expect(biased[99]).toBeCloseTo(logits[99] - 2, 6);
    expect(biased[4]).toBe(logits[4]);
  });

  it("temperature divides the logits, and temperature 0 keeps only the highest", () => {
    const logits = randomLogits(64, 12);
    const scaled = samplers.temperature(logits, 0.5);
    for (let id = 0; id < 64; id++) expect(scaled[id]).toBeCloseTo(logits[id] / 0.5, 5);
    expect(keptIds(samplers.temperature(logits, 0))).toEqual([rankByLogit(logits)[0]]);
  });

  it("softmax sums to 1 and gives 0 to masked tokens", () => {
    const logits = randomLogits(300, 2, 6);
    logits[7] = -Infinity;
    const probs = samplers.softmax(logits);
    expect(probs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    expect(probs[7]).toBe(0);
    expect(samplers.greedy(logits)).toBe(rankByLogit(logits)[0]);
  });
});

/** Total-variation distance between an empirical histogram and a distribution. */
function totalVariation(counts: Map<number, number>, draws: number, expected: Map<number, number>): number {
  let distance = 0;
  const ids = new Set([...counts.keys(), ...expected.keys()]);
  for (const id of ids) distance += Math.abs((counts.get(id) ?? 0) / draws - (expected.get(id) ?? 0));
  return distance / 2;
}

describe("60 sampling: the chain draws from the distribution its steps define", () => {
  const cases: { name: string; options: Parameters<typeof createSampler>[0]; expected: (logits: Float32Array) => Map<number, number> }[] = [
    {
      name: "temperature 1 alone (softmax of everything)",
      options: { temperature: 1, topK: 0, topP: 1, minP: 0 },
      expected: (logits) => softmaxOver(logits, rankByLogit(logits)),
    },
    {
      name: "the default chain (topK 40 → topP 0.95 → minP 0.05 → temperature 0.8)",
      options: {},
      expected: (logits) => {
        const afterK = samplers.topK(logits, 40);
        const afterP = samplers.topP(afterK, 0.95);
        const afterMin = samplers.minP(afterP, 0.05);
        return softmaxOver(samplers.temperature(afterMin, 0.8), keptIds(afterMin));
      },
    },
    {
      name: "typicalP 0.9 → topP 0.8 at temperature 1.5 without topK",
      options: { topK: 0, typicalP: 0.9, topP: 0.8, minP: 0, temperature: 1.5 },
      expected: (logits) => {
        const kept = samplers.topP(samplers.typicalP(logits, 0.9), 0.8);
        return softmaxOver(samplers.temperature(kept, 1.5), keptIds(kept));
      },
    },
  ];
  for (const { name, options, expected } of cases) {
    it(`${name}: 40000 seeded draws are within 0.02 total variation of it`, () => {
      const logits = randomLogits(120, 77, 1.5);
      const sampler = createSampler({ ...options, seed: 2024 });
      const counts = new Map<number, number>();
      const draws = 40_000;
      for (let i = 0; i < draws; i++) {
        const token = sampler.sample(logits);
        counts.set(token, (counts.get(token) ?? 0) + 1);
      }
      const target = expected(logits);
      for (const token of counts.keys()) expect(target.has(token), `token ${token} is outside the kept set`).toBe(true);
      expect(totalVariation(counts, draws, target)).toBeLessThan(0.02);
    });
  }

  it("composing the pure functions in chain order gives the chain's token for the same random numbers", () => {
    const logits = randomLogits(32000, 31, 3);
    const chain = createSampler({ seed: 99, topK: 0, topP: 0.9, minP: 0.02, temperature: 0.7 });
    const random = createRandom(99);
    for (let i = 0; i < 20; i++) {
      const composed = samplers.draw(samplers.temperature(samplers.minP(samplers.topP(logits, 0.9), 0.02), 0.7), random);
      expect(chain.sample(logits)).toBe(composed);
    }
  });

  it("temperature 0 is greedy: the highest logit after bias, lowest id on ties, whatever the filters say", () => {
    const logits = Float32Array.of(1, 5, 5, 2, -1);
    expect(sample(logits, { temperature: 0 })).toBe(1);
    expect(sample(logits, { temperature: 0, topK: 1, topP: 0.1, minP: 0.9, typicalP: 0.1 })).toBe(1);
    expect(sample(logits, { temperature: 0, logitBias: new Map([[1, -Infinity]]) })).toBe(2);
    const big = randomLogits(32000, 8);
    expect(sample(big, { temperature: 0, seed: 1 })).toBe(rankByLogit(big)[0]);
  });

  it("a token biased to -Infinity is never sampled, even when it dominates", () => {
    const logits = randomLogits(50, 6);
    logits[10] = 30;
    logits[11] = 29;
    const sampler = createSampler({ temperature: 2, topK: 0, topP: 1, minP: 0, seed: 5, logitBias: new Map([[10, -Infinity], [11, -Infinity]]) });
    const seen = new Set<number>();
    for (let i = 0; i < 5000; i++) seen.add(sampler.sample(logits));
    expect(seen.has(10)).toBe(false);
    expect(seen.has(11)).toBe(false);
    expect(seen.size).toBeGreaterThan(10);
  });
});
