import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { createRandom, createSampler, sample, type SamplingOptions } from "../lib/sampling/index.js";

const root = join(import.meta.dirname, "..");

/** xoshiro128** seeded by two SplitMix64 outputs, written independently with BigInt from the papers' pseudo-code. */
function referenceXoshiro(seed: number, count: number): number[] {
  const M64 = (1n << 64n) - 1n;
  const M32 = 0xffffffffn;
  let x = BigInt(seed);
  const splitmix = () => {
    x = (x + 0x9e3779b97f4a7c15n) & M64;
    let z = x;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M64;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M64;
    return z ^ (z >> 31n);
  };
  const a = splitmix();
  const b = splitmix();
  const s = [a & M32, a >> 32n, b & M32, b >> 32n];
  const rotl = (v: bigint, k: bigint) => ((v << k) | (v >> (32n - k))) & M32;
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    out.push(Number((rotl((s[1] * 5n) & M32, 7n) * 9n) & M32));
    const t = (s[1] << 9n) & M32;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11n);
  }
  return out;
}

/** A generation: 120 tokens from seeded logits, feeding every token back into the penalty window. */
function generate(options: SamplingOptions, logitSeed: number): number[] {
  const random = createRandom(logitSeed);
  const logits = new Float32Array(32000);
  const sampler = createSampler(options);
  const tokens: number[] = [];
  for (let step = 0; step < 120; step++) {
    for (let i = 0; i < logits.length; i++) logits[i] = random.nextFloat() * 12 - 6;
    tokens.push(sampler.sample(logits));
  }
  return tokens;
}

const OPTIONS: SamplingOptions = { seed: 1234, temperature: 0.9, topK: 0, topP: 0.97, minP: 0.01, repeatPenalty: 1.1, frequencyPenalty: 0.05 };

describe("60 sampling: a seed makes sampling reproducible", () => {
  it("the generator is xoshiro128** seeded by SplitMix64 (matches an independent BigInt implementation)", () => {
    for (const seed of [0, 1, 42, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER]) {
      const random = createRandom(seed);
      const got = Array.from({ length: 64 }, () => random.nextUint32());
      expect(got, `seed ${seed}`).toEqual(referenceXoshiro(seed, 64));
    }
  });

  it("floats are uniform in [0, 1): 100000 draws have mean ≈ 0.5 and every decile ≈ 10%", () => {
    const random = createRandom(7);
    const deciles = new Array<number>(10).fill(0);
    let sum = 0;
    let outside = 0;
    for (let i = 0; i < 100_000; i++) {
      const u = random.nextFloat();
      if (!(u >= 0 && u < 1)) outside++;
      sum += u;
      deciles[Math.floor(u * 10)]++;
    }
    expect(outside).toBe(0);
    expect(sum / 100_000).toBeCloseTo(0.5, 2);
    for (const count of deciles) expect(Math.abs(count - 10_000)).toBeLessThan(500);
  });

  it("the same seed and inputs give the same tokens twice in one process; another seed does not", () => {
    const first = generate(OPTIONS, 5);
    expect(generate(OPTIONS, 5)).toEqual(first);
    expect(generate({ ...OPTIONS, seed: 1235 }, 5)).not.toEqual(first);
    expect(new Set(first).size).toBeGreaterThan(50);
  });

  it("reset() restarts the generator and the penalty window from the seed", () => {
    const logits = createRandom(3);
    const vector = Float32Array.from({ length: 1000 }, () => logits.nextFloat() * 4);
    const sampler = createSampler({ seed: 8, repeatPenalty: 1.5 });
    const first = Array.from({ length: 30 }, () => sampler.sample(vector));
    sampler.reset();
    expect(Array.from({ length: 30 }, () => sampler.sample(vector))).toEqual(first);
  });

  it("stateless sample() with a seed returns the same token on every call", () => {
    const random = createRandom(11);
    const logits = Float32Array.from({ length: 32000 }, () => random.nextFloat() * 3);
    const token = sample(logits, { seed: 77, topK: 0, topP: 1, minP: 0, temperature: 1 });
    for (let i = 0; i < 5; i++) expect(sample(logits, { seed: 77, topK: 0, topP: 1, minP: 0, temperature: 1 })).toBe(token);
  });

  it("the same seed gives the same tokens in a separate Node process", () => {
    // The child runs the built package (dist/, made by the global test setup), as a user's process would.
    const out = join(root, ".cache", "determinism");
    mkdirSync(out, { recursive: true });
    const script = `
      import { createRandom, createSampler } from ${JSON.stringify(pathToFileURL(join(root, "dist", "sampling", "index.js")).href)};
      const options = ${JSON.stringify(OPTIONS)};
      const random = createRandom(5);
      const logits = new Float32Array(32000);
      const sampler = createSampler(options);
      const tokens = [];
      for (let step = 0; step < 120; step++) {
        for (let i = 0; i < logits.length; i++) logits[i] = random.nextFloat() * 12 - 6;
        tokens.push(sampler.sample(logits));
      }
      process.stdout.write(JSON.stringify(tokens));
    `;
    writeFileSync(join(out, "child.js"), script);
    const child = JSON.parse(execFileSync(process.execPath, [join(out, "child.js")], { encoding: "utf8" })) as number[];
    expect(child).toEqual(generate(OPTIONS, 5));
  });

  it("without a seed, a sampler draws a random one and reports it, so the run can be replayed", () => {
    const a = createSampler();
    const b = createSampler();
    expect(a.seed).not.toBe(b.seed);
    const random = createRandom(4);
    const logits = Float32Array.from({ length: 5000 }, () => random.nextFloat() * 2);
    const replay = createSampler({ seed: a.seed });
    for (let i = 0; i < 50; i++) expect(replay.sample(logits)).toBe(a.sample(logits));
  });
});
