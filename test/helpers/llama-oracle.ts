/**
 * llama.cpp as the correctness oracle, through node-llama-cpp 3.21.1: CPU only, a fixed thread count, no flash
 * attention, and an F32 KV cache by default, so its numbers are as close to exact float32 arithmetic as
 * llama.cpp gets. One Llama instance serves the whole process.
 *
 * @example
 * ```ts
 * const oracle = await LlamaOracle.load(path);
 * const tokens = [1, ...oracle.tokenize("Hello world!")];
 * const distributions = await oracle.distributions(tokens); // distributions[i] = p(token i+1 | tokens 0..i)
 * await oracle.dispose();
 * ```
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";

import {
  getLlama, LlamaLogLevel, type ControlledEvaluateInputItem, type Llama, type LlamaContext, type LlamaContextSequence, type LlamaModel, type Token,
} from "node-llama-cpp";

/** Threads llama.cpp computes with: one, so several test workers share the machine's cores without contention. */
export const ORACLE_THREADS = 1;

let llamaInstance: Promise<Llama> | undefined;

/** The process's one CPU-only Llama (prebuilt binary only; never builds llama.cpp from source). */
export function oracleLlama(): Promise<Llama> {
  llamaInstance ??= getLlama({ gpu: false, build: "never", maxThreads: ORACLE_THREADS, logLevel: LlamaLogLevel.error });
  return llamaInstance;
}

/** Releases the process's Llama (after every oracle is disposed). */
export async function disposeOracleLlama(): Promise<void> {
  const pending = llamaInstance;
  llamaInstance = undefined;
  if (pending !== undefined) await (await pending).dispose();
}

export interface OracleOptions {
  /** Tokens the context holds. Default 256. */
  contextSize?: number;
  /** llama.cpp's KV cache element type. Default "F32" (node-llama-cpp's own default is F16). */
  kvCacheType?: "F32" | "F16";
}

/** Sampling settings under which llama.cpp's probabilities are the plain softmax of the logits. */
const FULL_DISTRIBUTION = { temperature: 1, topK: 0, topP: 1, minP: 0 } as const;
const GREEDY = { temperature: 0 } as const;

export class LlamaOracle {
  private constructor(
    readonly model: LlamaModel,
    private readonly context: LlamaContext,
    private readonly sequence: LlamaContextSequence,
    /** Vocabulary size: the length of every distribution. */
    readonly nVocab: number,
  ) {}

  /** Loads `path` into llama.cpp with one context of one sequence. */
  static async load(path: string, options: OracleOptions = {}): Promise<LlamaOracle> {
    const { contextSize = 256, kvCacheType = "F32" } = options;
    const llama = await oracleLlama();
    const model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
    try {
      const context = await model.createContext({
        contextSize,
        sequences: 1,
        threads: { ideal: ORACLE_THREADS, min: ORACLE_THREADS },
        flashAttention: false,
        experimentalKvCacheKeyType: kvCacheType,
        experimentalKvCacheValueType: kvCacheType,
      });
      const nVocab = model.fileInfo.metadata.tokenizer.ggml.tokens.length;
      return new LlamaOracle(model, context, context.getSequence(), nVocab);
    } catch (error) {
      await model.dispose();
      throw error;
    }
  }

  /** llama.cpp's tokenization of `text`, without BOS and without parsing special tokens. */
  tokenize(text: string): number[] {
    return this.model.tokenize(text, false).map(Number);
  }

  /**
   * llama.cpp's next-token probabilities after each of `tokens`, as node-llama-cpp returns them (a Map from token
   * to probability, highest first), under temperature 1 with no top-k/top-p/min-p and no penalties. The
   * sequence's history is cleared first, so the tokens start at position 0.
   */
  async probabilityMaps(tokens: readonly number[]): Promise<Map<number, number>[]> {
    await this.sequence.clearHistory();
    const input: ControlledEvaluateInputItem[] = tokens.map((token) => [token as Token, { generateNext: { probabilities: true, options: FULL_DISTRIBUTION } }]);
    const results = await this.sequence.controlledEvaluate(input);
    return tokens.map((_, i) => {
      const probabilities = results[i]?.next.probabilities;
      if (probabilities === undefined) throw new Error(`llama.cpp returned no distribution for position ${i}`);
      return probabilities as Map<number, number>;
    });
  }

  /**
   * Teacher-forced next-token distributions over the whole vocabulary: entry i is p(next | tokens[0..i]), the
   * softmax of llama.cpp's logits after token i. llama.cpp normalises with a float32 sum over 32000 terms, which
   * is off by up to ~1e-4; that alone would add ~6e-5 to every KL, so the values are renormalised in float64
   * (after checking that the distribution is whole and that its sum was within 1e-3 of 1).
   */
  async distributions(tokens: readonly number[]): Promise<Float64Array[]> {
    const maps = await this.probabilityMaps(tokens);
    return maps.map((probabilities, i) => {
      if (probabilities.size !== this.nVocab) {
        throw new Error(`llama.cpp's distribution at position ${i} covers ${probabilities.size} of ${this.nVocab} tokens`);
      }
      const dense = new Float64Array(this.nVocab);
      let sum = 0;
      for (const [token, probability] of probabilities) {
        dense[token] = probability;
        sum += probability;
      }
      if (!(Math.abs(sum - 1) <= 1e-2)) throw new Error(`llama.cpp's distribution at position ${i} sums to ${sum}`);
      for (let t = 0; t < dense.length; t++) dense[t] /= sum;
      return dense;
    });
  }

  /** Greedy decoding: the `count` tokens llama.cpp picks (argmax each step) after `prompt`, from position 0. */
  async greedy(prompt: readonly number[], count: number): Promise<number[]> {
    if (prompt.length === 0) throw new RangeError("prompt must hold at least one token");
    await this.sequence.clearHistory();
    const generated: number[] = [];
    const decodeNext = (token: number): ControlledEvaluateInputItem => [token as Token, { generateNext: { token: true, options: GREEDY } }];
    let input: ControlledEvaluateInputItem[] = [...prompt.slice(0, -1).map((token) => token as Token), decodeNext(prompt[prompt.length - 1])];
    while (generated.length < count) {
      const results = await this.sequence.controlledEvaluate(input);
      const next = results[input.length - 1]?.next.token;
      if (next === undefined || next === null) throw new Error(`llama.cpp produced no token at step ${generated.length}`);
      generated.push(next);
      input = [decodeNext(next)];
    }
    return generated;
  }

  async dispose(): Promise<void> {
    await this.context.dispose();
    await this.model.dispose();
  }
}

/**
 * Whether llama.cpp loads `path`, tried in a child process. A failed load must not happen in a test worker:
 * in node-llama-cpp 3.21.1, once a load has failed and the garbage collector has run, `Llama.dispose()` never
 * resolves, which hangs the worker's teardown.
 */
export function llamaCppLoads(path: string): Promise<{ loaded: boolean; message: string }> {
  const program = fileURLToPath(new URL("./llama-load-check.mjs", import.meta.url));
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [program, path], { timeout: 120_000 }, (error, stdout) => {
      if (error) reject(error);
      else resolve(JSON.parse(stdout) as { loaded: boolean; message: string });
    });
  });
}
