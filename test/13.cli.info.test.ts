import { execFileSync, spawnSync } from "node:child_process";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";

import { beforeAll, describe, expect, it } from "vitest";

import { inspectModel } from "../lib/index.js";
import { hostileCases } from "./helpers/hostile.js";
import { writeTinyModel } from "./helpers/tiny-model.js";

const root = join(import.meta.dirname, "..");
const dir = join(root, ".cache", "test-13-cli");
const cli = join(root, "dist", "cli", "main.js");
const modelPath = join(dir, "tiny.gguf");

function run(...args: string[]) {
  const result = spawnSync(process.execPath, [cli, ...args], { encoding: "utf8", timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

async function hostileFile(name: string): Promise<string> {
  const c = hostileCases().find((h) => h.name === name)!;
  const path = join(dir, `${name}.gguf`);
  await writeFile(path, await c.build(dir));
  return path;
}

beforeAll(async () => {
  execFileSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", join(root, "tsconfig.json")]);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await writeTinyModel(modelPath, { fileType: 7, slidingWindow: 128 });
});

describe("13 cli info: `mixtral-native info <file.gguf> [--json]`", () => {
  it("the built CLI starts with a node shebang", async () => {
    expect((await readFile(cli, "utf8")).startsWith("#!/usr/bin/env node\n")).toBe(true);
  });

  it("prints architecture, hyperparameters, tensor count, type histogram, file size and the verdict", async () => {
    const info = await inspectModel(modelPath);
    const { status, stdout, stderr } = run("info", modelPath);
    expect(stderr).toBe("");
    expect(status).toBe(0);
    expect(stdout).toContain(modelPath);
    expect(stdout).toMatch(/architecture\s+llama \(mixture of experts: 4 experts, 2 used per token, merged expert tensors\)/);
    expect(stdout).toMatch(new RegExp(`layers\\s+${info.nLayers}\\n`));
    expect(stdout).toMatch(new RegExp(`embedding\\s+${info.nEmbd}\\n`));
    expect(stdout).toMatch(/heads\s+4 query, 2 key\/value \(head dim 8, rope dims 8\)/);
    expect(stdout).toMatch(/vocabulary\s+300 tokens/);
    expect(stdout).toMatch(/sliding window\s+128\n/);
    expect(stdout).toMatch(/file type\s+7 \(MOSTLY_Q8_0\)/);
    expect(stdout).toMatch(new RegExp(`tensors\\s+${info.tensorCount}\\n`));
    expect(stdout).toMatch(new RegExp(`tensor types\\s+F32 ${info.tensorTypes.F32}\\n`));
    expect(stdout).toMatch(new RegExp(`file size\\s+[\\d.]+ KiB \\(${info.fileSize} bytes\\)`));
    expect(stdout).toMatch(/valid\s+yes \(tensor data scanned: no NaN or Inf\)/);
  });

  it("--json prints exactly one JSON object: inspectModel's ModelInfo plus valid: true", async () => {
    const { status, stdout } = run("info", modelPath, "--json");
    expect(status).toBe(0);
    expect(stdout.trim().split("\n")).toHaveLength(1);
    expect(JSON.parse(stdout)).toStrictEqual({ ...(await inspectModel(modelPath)), valid: true });
  });

  it("scans tensor data by default and --no-verify skips the scan", async () => {
    const path = await hostileFile("nan-in-q8_0-scale");
    const scanned = run("info", path);
    expect(scanned.status).toBe(1);
    expect(scanned.stderr).toMatch(/^error GGUF_NAN: .*blk\.0\.attn_q\.weight.*block 1 scale is NaN\n$/);
    const skipped = run("info", path, "--no-verify");
    expect(skipped.status).toBe(0);
    expect(skipped.stdout).toContain("tensor data not scanned");
  });

  it.each([
    ["truncated-in-tensor-data", "GGUF_TRUNCATED"],
    ["bad-magic", "GGUF_BAD_MAGIC"],
    ["expert-used-above-count", "MODEL_BAD_EXPERT_COUNT"],
    ["attn-k-shape-mismatch", "MODEL_SHAPE_MISMATCH"],
  ])("an invalid file (%s) exits 1 with one stderr line `error %s: ...`, no stack and no stdout", async (name, code) => {
    const path = await hostileFile(name);
    for (const args of [["info", path], ["info", path, "--json"]]) {
      const { status, stdout, stderr } = run(...args);
      expect(status).toBe(1);
      expect(stdout).toBe("");
      expect(stderr.endsWith("\n")).toBe(true);
      expect(stderr.trimEnd().split("\n")).toHaveLength(1);
      expect(stderr.startsWith(`error ${code}: ${path}: `)).toBe(true);
      expect(stderr).not.toMatch(/\bat .*:\d+:\d+/);
    }
  });

  it("a missing file exits 1 with GGUF_OPEN_FAILED", () => {
    const { status, stderr } = run("info", join(dir, "nope.gguf"));
    expect(status).toBe(1);
    expect(stderr).toMatch(/^error GGUF_OPEN_FAILED: .*nope\.gguf: cannot open: No such file or directory\n$/);
  });

  it("--version prints the package version", async () => {
    const { version } = JSON.parse(await readFile(join(root, "package.json"), "utf8")) as { version: string };
    const { status, stdout } = run("--version");
    expect(status).toBe(0);
    expect(stdout.trim()).toBe(version);
  });

  it("usage errors (no file, unknown option) exit non-zero with a one-line message", () => {
    for (const args of [["info"], ["info", modelPath, "--bogus"]]) {
      const { status, stderr } = run(...args);
      expect(status).not.toBe(0);
      expect(stderr.trimEnd().split("\n")).toHaveLength(1);
      expect(stderr).toMatch(/^error: /);
    }
  });
});
