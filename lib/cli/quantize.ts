/**
 * `mixtral-native quantize <in.gguf> <out.gguf> --type <type> [--threads N]`: writes the model in another
 * quantization type, with a progress bar and ETA on stderr. Ctrl-C stops it and leaves nothing at the output path.
 * @module
 */
import type { Command } from "commander";
import cliProgress from "cli-progress";

import { QUANTIZE_TYPES, quantizeModel, type QuantizeType } from "../quantize/quantize-model.js";
import { numberOption } from "./generate.js";

interface QuantizeCommandOptions {
  type: string;
  threads?: number;
}

export function registerQuantizeCommand(program: Command): void {
  program
    .command("quantize")
    .description("write a model in another quantization type (llama.cpp's mixes for the _s/_m types)")
    .argument("<input>", "the .gguf model to read (F32, F16, BF16 or quantized)")
    .argument("<output>", "the .gguf file to write")
    .requiredOption("-t, --type <type>", `one of ${QUANTIZE_TYPES.join(", ")}`)
    .option("--threads <n>", "threads that convert rows (default: physical cores)", numberOption("--threads", { integer: true, min: 1, max: 1024 }))
    .action(async (input: string, output: string, options: QuantizeCommandOptions) => {
      const controller = new AbortController();
      const onSigint = () => controller.abort(new Error("interrupted (SIGINT)"));
      process.on("SIGINT", onSigint);
      const bar = new cliProgress.SingleBar({
        format: "quantizing [{bar}] {percentage}% | ETA {eta_formatted} | {tensor}",
        etaBuffer: 50,
        hideCursor: true,
      }, cliProgress.Presets.shades_classic);
      let started = false;
      try {
        const result = await quantizeModel(input, output, {
          type: options.type as QuantizeType,
          threads: options.threads,
          signal: controller.signal,
          onWarning: (message) => process.stderr.write(`warning: ${message}\n`),
          onProgress: ({ bytesDone, bytesTotal, tensorName }) => {
            if (!started) {
              bar.start(bytesTotal, 0, { tensor: tensorName });
              started = true;
            }
            bar.update(bytesDone, { tensor: tensorName });
          },
        });
        if (started) bar.stop();
        started = false;
        const histogram = Object.entries(result.tensorTypes).map(([type, count]) => `${type} ${count}`).join(", ");
        process.stdout.write(`wrote ${output}: ${options.type.toLowerCase()} (file type ${result.fileType}), ` +
          `${result.bytesWritten} bytes, tensors ${histogram}\n`);
      } catch (error) {
        if (!controller.signal.aborted) throw error;
        if (started) bar.stop();
        started = false;
        process.stderr.write(`quantize interrupted: nothing was written to ${output}\n`);
        process.exitCode = 130;
      } finally {
        if (started) bar.stop();
        process.off("SIGINT", onSigint);
      }
    });
}

