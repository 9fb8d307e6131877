#!/usr/bin/env node
/**
 * The `mixtral-native` command. Each subcommand lives in its own module under lib/cli/ and registers itself on
 * the program; failures end as one line on stderr and exit code 1, never a stack trace.
 * @module
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

import { Command } from "commander";

import { MixtralError } from "../errors.js";
import { packageRoot } from "../native.js";
import { registerDemoCommand } from "./demo.js";
import { registerGenerateCommand } from "./generate.js";
import { registerInfoCommand } from "./info.js";
import { registerQuantizeCommand } from "./quantize.js";

/** The one stderr line for an error that ends the command: `error CODE: message` for the library's own errors. */
function formatCliError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const oneLine = message.replace(/\s*\n\s*/g, " ");
  return error instanceof MixtralError ? `error ${error.code}: ${oneLine}` : `error: ${oneLine}`;
}

function packageVersion(): string {
  const manifest = JSON.parse(readFileSync(join(packageRoot, "package.json"), "utf8")) as { version: string };
  return manifest.version;
}

async function main(argv: string[]): Promise<void> {
  const program = new Command("mixtral-native")
    .description("Run Mixtral and the dense Mistral family from GGUF files on the CPU")
    .version(packageVersion(), "-V, --version", "print the version")
    // commander's own errors (unknown option, its did-you-mean on a second line) become one line too; set before
    // the subcommands are registered, which copy it
    .configureOutput({ outputError: (text, write) => write(`${text.trim().replace(/\s*\n\s*/g, " ")}\n`) });
  registerInfoCommand(program);
  registerGenerateCommand(program);
  registerDemoCommand(program);
  registerQuantizeCommand(program);
  try {
    await program.parseAsync(argv);
  } catch (error) {
    process.stderr.write(`${formatCliError(error)}\n`);
    process.exitCode = 1;
  }
}

await main(process.argv);
