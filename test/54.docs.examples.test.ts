import { execFileSync } from "node:child_process";
import { join } from "node:path";

import { beforeAll, describe, expect, it } from "vitest";

import { cachedTestModel } from "../lib/testing/test-model.js";

const root = join(import.meta.dirname, "..");
let path: string;

beforeAll(async () => {
  path = await cachedTestModel({});
});

/** Runs an example as a user would (it imports "mixtral-native", i.e. this package's dist/). */
function runExample(name: string): string {
  return execFileSync(process.execPath, [join(root, "examples", name), path], { cwd: root, encoding: "utf8", timeout: 120_000 });
}

describe("54 examples run", () => {
  it("examples/custom-sampling.mjs runs its seeded loop and chat sampler, and prints the same text every run", () => {
    const first = runExample("custom-sampling.mjs");
    const lines = first.trimEnd().split("\n");
    expect(lines.length).toBeGreaterThanOrEqual(2);
    expect(lines[0].length).toBeGreaterThan(0);
    const chat = JSON.parse(lines.at(-1)!);
    expect(chat.usage.completionTokens).toBeGreaterThan(0);
    expect(["eos", "maxTokens"]).toContain(chat.stopReason);
    expect(runExample("custom-sampling.mjs")).toBe(first);
  });

  it("examples/worker-threads.mjs answers two messages from a worker thread while the main thread keeps running", () => {
    const output = runExample("worker-threads.mjs").trimEnd().split("\n");
    const results = output.filter((line) => line.startsWith("{")).map((line) => JSON.parse(line));
    expect(results).toHaveLength(3);
    expect(results[0].usage.completionTokens).toBe(24);
    // The second question reuses the first exchange from the worker's KV cache.
    expect(results[1].usage.cachedTokens).toBeGreaterThan(results[0].usage.promptTokens);
    expect(results[2].mainThreadTicks).toBeGreaterThan(0);
  });
});
