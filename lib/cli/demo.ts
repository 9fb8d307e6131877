/**
 * `mixtral-native demo` (what `npm start` runs): streams a generation from the embedded demo model, a tiny
 * Mixtral trained on the King James Bible (models/, see docs/demo-model.md).
 * @module
 */
import { existsSync } from "node:fs";
import { join } from "node:path";

import type { Command } from "commander";

import { MixtralError } from "../errors.js";
import { packageRoot } from "../native.js";
import { streamGeneration } from "./generate.js";

/** The model `npm start` runs. */
export const DEMO_MODEL_PATH = join(packageRoot, "models", "kjv-mixtral.gguf");
export const DEMO_PROMPT = "In the beginning";

export function registerDemoCommand(program: Command): void {
  program
    .command("demo")
    .description("stream a generation from the embedded demo model (a tiny Mixtral trained on the King James Bible)")
    .option("-p, --prompt <text>", "the prompt", DEMO_PROMPT)
    .action(async (options: { prompt: string }) => {
      if (!existsSync(DEMO_MODEL_PATH)) {
        throw new MixtralError("DEMO_MODEL_MISSING", `the demo model ${DEMO_MODEL_PATH} is missing from this installation`);
      }
      process.stderr.write("demo model: a tiny Mixtral (8 experts, top-2) trained on the King James Bible; see docs/demo-model.md\n");
      await streamGeneration(DEMO_MODEL_PATH, options.prompt, { tokens: 96, temperature: 0.7, topK: 40, seed: 1 });
    });
}
