/**
 * `mixtral-native generate --model FILE --prompt TEXT [-n N] [--temperature T] [--seed S] [--threads N]`:
 * loads a model and streams a generation to stdout; progress and speed go to stderr.
 * @module
 */
import type { Command } from "commander";
import { InvalidArgumentError } from "commander";

import { Mixtral } from "../model.js";

interface GenerateCommandOptions {
  model: string;
  prompt: string;
  tokens: number;
  temperature?: number;
  seed?: number;
  threads?: number;
  topK?: number;
  topP?: number;
  minP?: number;
}

/** Parses a commander option value as a number, with a message that names the option. */
export function numberOption(name: string, { integer = false, min = -Infinity, max = Infinity } = {}) {
  return (value: string): number => {
    const parsed = Number(value);
    if (value.trim() === "" || !Number.isFinite(parsed) || (integer && !Number.isInteger(parsed)) || parsed < min || parsed > max) {
      const range = max < Infinity ? ` in [${min}, ${max}]` : min > -Infinity ? ` ≥ ${min}` : "";
      throw new InvalidArgumentError(`${name} must be ${integer ? "an integer" : "a number"}${range}; got ${JSON.stringify(value)}`);
    }
    return parsed;
  };
}

export function registerGenerateCommand(program: Command): void {
  program
    .command("generate")
    .description("stream a generation from any supported GGUF model")
    .requiredOption("-m, --model <file>", "the .gguf model file")
    .requiredOption("-p, --prompt <text>", "the prompt")
    .option("-n, --tokens <n>", "tokens to generate", numberOption("--tokens", { integer: true, min: 0 }), 128)
    .option("--temperature <t>", "sampling temperature (0: greedy)", numberOption("--temperature", { min: 0 }))
    .option("--top-k <k>", "keep the k most likely tokens (0: off)", numberOption("--top-k", { integer: true, min: 0 }))
    .option("--top-p <p>", "nucleus sampling mass (1: off)", numberOption("--top-p", { min: 0, max: 1 }))
    .option("--min-p <p>", "drop tokens below p × the top probability (0: off)", numberOption("--min-p", { min: 0, max: 1 }))
    .option("--seed <s>", "sampling seed, for reproducible output", numberOption("--seed", { integer: true, min: 0 }))
    .option("--threads <n>", "compute threads (default: physical cores)", numberOption("--threads", { integer: true, min: 1 }))
    .action(async (options: GenerateCommandOptions) => {
      await streamGeneration(options.model, options.prompt, options);
    });
}

/** Loads `modelPath`, streams the continuation of `prompt` to stdout and a summary line to stderr. */
export async function streamGeneration(modelPath: string, prompt: string, options: Omit<GenerateCommandOptions, "model" | "prompt">): Promise<void> {
  const loadStart = performance.now();
  // On a terminal the progress line is erased if loading fails, so the error stays the one line on stderr.
  const terminal = process.stderr.isTTY === true;
  if (terminal) process.stderr.write(`loading ${modelPath} …`);
  let model: Mixtral;
  try {
    model = await Mixtral.load(modelPath, { threads: options.threads });
  } catch (error) {
    if (terminal) process.stderr.write("\r\x1b[K");
    throw error;
  }
  process.stderr.write(`${terminal ? "\r\x1b[K" : ""}loaded ${modelPath} in ${Math.round(performance.now() - loadStart)} ms\n`);
  try {
    const { info } = model;
    const shape = info.nExperts > 0 ? `${info.nExperts} experts, top-${info.nExpertsUsed}` : "dense";
    process.stderr.write(`${info.nLayers} layers × ${info.nEmbd}, ${shape}, ${info.fileTypeName ?? "unknown type"}, ${model.threads} threads\n`);
    const session = model.createSession();
    process.stdout.write(prompt);
    const start = performance.now();
    let firstTokenAt = 0;
    let count = 0;
    for await (const { text } of session.generate(prompt, {
      maxTokens: options.tokens,
      temperature: options.temperature,
      topK: options.topK,
      topP: options.topP,
      minP: options.minP,
      seed: options.seed,
    })) {
      if (count++ === 0) firstTokenAt = performance.now();
      process.stdout.write(text);
    }
    const end = performance.now();
    const decodeRate = count > 1 ? ((count - 1) * 1000) / (end - firstTokenAt) : 0;
    process.stdout.write("\n");
    process.stderr.write(`${count} tokens; first after ${Math.round(firstTokenAt - start)} ms, then ${decodeRate.toFixed(1)} tokens/s\n`);
  } finally {
    await model.dispose();
  }
}
