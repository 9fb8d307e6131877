/**
 * `mixtral-native info <file.gguf> [--json] [--no-verify]`: validates a model file and prints what it holds.
 * @module
 */
import type { Command } from "commander";

import { inspectModel, type ModelInfo } from "../gguf/inspect.js";

interface InfoOptions {
  json?: boolean;
  verify: boolean;
}

export function registerInfoCommand(program: Command): void {
  program
    .command("info")
    .description("validate a GGUF model file and print its architecture, hyperparameters and tensor types")
    .argument("<file>", "the .gguf file")
    .option("--json", "print one JSON object instead of text")
    .option("--no-verify", "skip the scan of tensor data for NaN/Inf (which reads the whole file)")
    .action(async (file: string, options: InfoOptions) => {
      const info = await inspectModel(file, { verifyTensorData: options.verify });
      const output = options.json ? `${JSON.stringify({ ...info, valid: true })}\n` : formatInfo(file, info, options.verify);
      process.stdout.write(output);
    });
}

export function formatInfo(file: string, info: ModelInfo, verified: boolean): string {
  const moe = info.nExperts > 0;
  const architecture = moe
    ? `${info.architecture} (mixture of experts: ${info.nExperts} experts, ${info.nExpertsUsed} used per token, ${info.expertLayout} expert tensors)`
    : `${info.architecture} (dense feed-forward)`;
  const fileType = info.fileType === null ? "not recorded" : `${info.fileType} (${info.fileTypeName ?? "unknown to this version"})`;
  const histogram = Object.entries(info.tensorTypes).map(([type, count]) => `${type} ${count}`).join(", ");
  const rows: [string, string | number][] = [
    ["architecture", architecture],
    ["layers", info.nLayers],
    ["embedding", info.nEmbd],
    ["feed-forward", moe ? `${info.nFf} per expert` : info.nFf],
    ["heads", `${info.nHeads} query, ${info.nHeadsKv} key/value (head dim ${info.headDim}, rope dims ${info.ropeDim})`],
    ["vocabulary", `${info.nVocab} tokens`],
    ["context length", info.contextLength],
    ["rope theta", info.ropeTheta],
    ["rms epsilon", info.rmsEps],
    ["sliding window", info.slidingWindow ?? "none"],
    ["file type", fileType],
    ["tensors", info.tensorCount],
    ["tensor types", histogram],
    ["file size", `${formatBytes(info.fileSize)} (${info.fileSize} bytes)`],
    ["valid", verified ? "yes (tensor data scanned: no NaN or Inf)" : "yes (tensor data not scanned: --no-verify)"],
  ];
  const width = Math.max(...rows.map(([label]) => label.length)) + 2;
  return `${file}\n${rows.map(([label, value]) => `  ${label.padEnd(width)}${value}`).join("\n")}\n`;
}

function formatBytes(bytes: number): string {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes, unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}
