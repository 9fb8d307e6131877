// generate (issue 4, item 8): greedy decoding picks llama.cpp's tokens, the streamed text is the decoded tokens,
// and stop strings end generation without ever being emitted, even when they span two tokens.
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { GgmlType } from "../lib/gguf/types.js";
import { Mixtral, type GenerateResult, type Session } from "../lib/index.js";
import { cachedTestModel } from "../lib/testing/test-model.js";
import { LlamaOracle, disposeOracleLlama } from "./helpers/llama-oracle.js";

// The F32 MoE model of tests 16 and 40.
const F32_MOE = { nEmbd: 256, nFf: 512, nLayers: 2, nHeads: 8, nHeadsKv: 2, nExperts: 8, nExpertsUsed: 2, type: GgmlType.F32 } as const;
const PROMPT = "In the beginning God created the heaven and the earth.";
const COUNT = 32;

let path: string;
let model: Mixtral;
let prompt: number[];

beforeAll(async () => {
  path = await cachedTestModel(F32_MOE);
  model = await Mixtral.load(path, { threads: 2 });
  prompt = Array.from(model.tokenizer.encode(PROMPT));
});

afterAll(async () => {
  await model?.dispose();
  await disposeOracleLlama();
});

interface Streamed {
  chunks: string[];
  tokens: number[];
  result: GenerateResult;
}

async function stream(session: Session, options: Parameters<Session["generate"]>[1]): Promise<Streamed> {
  const steps = session.generate(prompt, options);
  const chunks: string[] = [];
  const tokens: number[] = [];
  for (;;) {
    const step = await steps.next();
    if (step.done) return { chunks, tokens, result: step.value };
    chunks.push(step.value.text);
    tokens.push(step.value.token);
  }
}

const greedy = (maxTokens: number) => ({ maxTokens, temperature: 0 });

describe("47 engine: generate", () => {
  it("greedy generate on the F32 model yields the same 32 tokens as llama.cpp's greedy decoding", async () => {
    const ours = await stream(model.createSession(), greedy(COUNT));
    const oracle = await LlamaOracle.load(path, { kvCacheType: "F16" });
    let theirs: number[];
    try {
      theirs = await oracle.greedy(prompt, COUNT);
    } finally {
      await oracle.dispose();
    }
    expect(ours.result.stopReason).toBe("maxTokens");
    expect(ours.tokens).toEqual(theirs);
    expect(ours.result.tokens).toEqual(theirs);
    expect(ours.result.promptTokens).toBe(prompt.length);
  });

  it("the streamed text equals tokenizer.decode of the generated tokens (continuation: true) and the result's text", async () => {
    const { chunks, tokens, result } = await stream(model.createSession(), greedy(64));
    const decoded = model.tokenizer.decode(tokens, { continuation: true });
    expect(decoded.length).toBeGreaterThan(64);
    expect(chunks.join("")).toBe(decoded);
    expect(result.text).toBe(decoded);
  });

  describe("stop strings", () => {
    let full: Streamed;
    let pieces: string[];
    // A stop string made of the last two characters of token `boundary`'s text and the first two of the next one's.
    let boundary: number;
    let stop: string;
    let stopAt: number;

    beforeAll(async () => {
      full = await stream(model.createSession(), greedy(48));
      pieces = full.chunks; // the text each token completed
      expect(pieces.join("")).toBe(full.result.text);
      const text = full.result.text;
      for (boundary = 8; boundary < pieces.length - 1; boundary++) {
        if (pieces[boundary].length < 2 || pieces[boundary + 1].length < 2) continue;
        stop = pieces[boundary].slice(-2) + pieces[boundary + 1].slice(0, 2);
        stopAt = pieces.slice(0, boundary + 1).join("").length - 2;
        if (text.indexOf(stop) === stopAt) break; // its first occurrence is the one across the boundary
      }
      expect(boundary).toBeLessThan(pieces.length - 1);
    });

    it("a stop string spanning two tokens ends generation there: its text and all after it are never streamed", async () => {
      const session = model.createSession();
      const { chunks, tokens, result } = await stream(session, { ...greedy(48), stop });
      console.log(`47 stop string ${JSON.stringify(stop)} spans tokens ${boundary} and ${boundary + 1} (${JSON.stringify(pieces[boundary])} + ${JSON.stringify(pieces[boundary + 1])})`);
      expect(result.stopReason).toBe("stop");
      expect(chunks.join("")).toBe(full.result.text.slice(0, stopAt));
      expect(result.text).toBe(full.result.text.slice(0, stopAt));
      expect(chunks.join("")).not.toContain(stop);
      // The stop completes with token boundary + 1; it is sampled (and returned) but not evaluated.
      expect(result.tokens).toEqual(full.tokens.slice(0, boundary + 2));
      expect(tokens.length).toBeLessThanOrEqual(boundary + 2);
      expect(session.position).toBe(prompt.length + boundary + 1);
    });

    it("with several stop strings the earliest match wins, and one given as a plain string works the same", async () => {
      const later = pieces.slice(boundary + 3, boundary + 6).join("");
      expect(full.result.text.indexOf(later)).toBeGreaterThan(stopAt);
      const both = await stream(model.createSession(), { ...greedy(48), stop: [later, stop] });
      expect(both.result.stopReason).toBe("stop");
      expect(both.result.text).toBe(full.result.text.slice(0, stopAt));
      const single = await stream(model.createSession(), { ...greedy(48), stop });
      expect(single.result.text).toBe(both.result.text);
    });

    it("text held back as a possible stop string is released when the match fails: the stream is the full text", async () => {
      const neverCompletes = pieces[boundary].slice(-2) + "\u0000§";
      const { chunks, result } = await stream(model.createSession(), { ...greedy(48), stop: neverCompletes });
      expect(result.stopReason).toBe("maxTokens");
      expect(chunks.join("")).toBe(full.result.text);
      expect(result.tokens).toEqual(full.tokens);
    });
  });
});
