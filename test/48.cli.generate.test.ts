// `mixtral-native generate` (issue 4, item 9), run as the package ships it (dist/cli/main.js, built by the global
// setup): it prints the prompt and the greedy continuation the library computes, and bad options end as one line
// on stderr with exit code 1.
import { spawnSync } from "node:child_process";
import { join } from "node:path";

import { beforeAll, describe, expect, it } from "vitest";

import { Mixtral } from "../lib/index.js";
import { cachedTestModel } from "../lib/testing/test-model.js";

const root = join(import.meta.dirname, "..");
const cli = join(root, "dist", "cli", "main.js");
const SHAPE = { nEmbd: 128, nFf: 256, nLayers: 2, nHeads: 4, nHeadsKv: 2, nExperts: 8, nExpertsUsed: 2 } as const;
const PROMPT = "In the beginning";

let path: string;

function run(...args: string[]) {
  const result = spawnSync(process.execPath, [cli, ...args], { encoding: "utf8", timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

beforeAll(async () => {
  path = await cachedTestModel(SHAPE);
});

describe("48 cli: `mixtral-native generate`", () => {
  it("--model F --prompt P -n 8 --temperature 0 prints the prompt and the library's greedy continuation, and a summary on stderr", async () => {
    const model = await Mixtral.load(path, { threads: 2 });
    let continuation: string;
    try {
      const steps = model.createSession().generate(PROMPT, { maxTokens: 8, temperature: 0 });
      let step = await steps.next();
      while (!step.done) step = await steps.next();
      expect(step.value.tokens).toHaveLength(8);
      continuation = step.value.text;
    } finally {
      await model.dispose();
    }
    expect(continuation.length).toBeGreaterThan(0);

    const { status, stdout, stderr } = run("generate", "--model", path, "--prompt", PROMPT, "-n", "8", "--temperature", "0", "--threads", "2");
    expect(status).toBe(0);
    expect(stdout).toBe(`${PROMPT}${continuation}\n`);
    expect(stderr).toMatch(new RegExp(`^loaded ${path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} in \\d+ ms\\n`));
    expect(stderr).toMatch(/2 layers × 128, 8 experts, top-2, ALL_F32, 2 threads\n/);
    expect(stderr).toMatch(/8 tokens; first after \d+ ms, then [\d.]+ tokens\/s\n$/);
  });

  it.each<[string, string[], RegExp]>([
    ["a negative token count", ["-n", "-1"], /^error: .*--tokens must be an integer ≥ 0; got "-1"$/],
    ["a token count that is not a number", ["-n", "many"], /^error: .*--tokens must be an integer ≥ 0; got "many"$/],
    ["a negative temperature", ["--temperature", "-1"], /^error: .*--temperature must be a number ≥ 0; got "-1"$/],
    ["NaN as top-p", ["--top-p", "nan"], /^error: .*--top-p must be a number in \[0, 1\]; got "nan"$/],
    ["top-p above 1", ["--top-p", "1.5"], /^error: .*--top-p must be a number in \[0, 1\]; got "1\.5"$/],
    ["zero threads", ["--threads", "0"], /^error: .*--threads must be an integer ≥ 1; got "0"$/],
    ["a misspelt option", ["--temprature", "0"], /^error: unknown option '--temprature' \(Did you mean --temperature\?\)$/],
    ["a stray argument", ["extra"], /^error: too many arguments for 'generate'/],
  ])("%s exits 1 with one line on stderr and nothing on stdout", (_label, extra, message) => {
    const { status, stdout, stderr } = run("generate", "--model", path, "--prompt", PROMPT, ...extra);
    expect(status).toBe(1);
    expect(stdout).toBe("");
    expect(stderr.endsWith("\n")).toBe(true);
    expect(stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(stderr.trimEnd()).toMatch(message);
  });

  it("a missing --model, or a model file that does not exist, exits 1 with one stderr line (the GgufError code for the file)", () => {
    const missingOption = run("generate", "--prompt", PROMPT);
    expect(missingOption.status).toBe(1);
    expect(missingOption.stderr).toBe("error: required option '-m, --model <file>' not specified\n");
    const missingFile = join(root, ".cache", "no-such-model.gguf");
    const missing = run("generate", "--model", missingFile, "--prompt", PROMPT);
    expect(missing.status).toBe(1);
    expect(missing.stdout).toBe("");
    expect(missing.stderr).toBe(`error GGUF_OPEN_FAILED: ${missingFile}: cannot open: No such file or directory\n`);
  });
});
