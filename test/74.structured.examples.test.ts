/**
 * docs/prompting.md's examples run: examples/prompting-patterns.mjs and examples/structured-output.mjs execute as a
 * user runs them (importing "mixtral-native", i.e. dist/), their output shows each pattern working, and every
 * code block of the page is a verbatim excerpt of the script it names.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

import Ajv from "ajv";
import { beforeAll, describe, expect, it } from "vitest";

import { MISTRAL_SAFE_PROMPT } from "../lib/chat-template.js";
import { cachedTestModel } from "../lib/testing/test-model.js";

const root = join(import.meta.dirname, "..");
const DEMO_MODEL = join(root, "models", "kjv-mixtral.gguf");
let path: string;

beforeAll(async () => {
  // The scripts' own default: the demo model when the package has it, else the synthetic test model.
  path = existsSync(DEMO_MODEL) ? DEMO_MODEL : await cachedTestModel({});
});

function runExample(name: string): Record<string, unknown>[] {
  const output = execFileSync(process.execPath, [join(root, "examples", name), path], { cwd: root, encoding: "utf8", timeout: 120_000 });
  return output
    .trimEnd()
    .split("\n")
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe("74 structured: the prompting examples run", () => {
  it("examples/prompting-patterns.mjs: each pattern replies; few-shot reuses the cached examples; the guardrail opens the prompt", () => {
    const lines = runExample("prompting-patterns.mjs");
    expect(lines.map((line) => line.pattern)).toEqual(["json-from-fields", "code-generation", "few-shot", "few-shot", "guardrail"]);
    for (const line of lines) {
      expect((line.usage as { completionTokens: number }).completionTokens).toBeGreaterThan(0);
      expect(["eos", "maxTokens"]).toContain(line.stopReason);
    }
    expect(typeof lines[0].parses).toBe("boolean");
    expect(lines[1].prompt).toBe(
      "<s>[INST] You are an expert Python programmer. Reply with one fenced code block and nothing else.\n\n" +
        "Write a function fib(n) that returns the n-th Fibonacci number. [/INST]",
    );
    const [first, second] = [lines[2].usage, lines[3].usage] as { promptTokens: number; cachedTokens: number }[];
    expect(first.cachedTokens).toBe(0);
    expect(second.cachedTokens).toBeGreaterThan(first.promptTokens - 15);
    expect(lines[4].guardrail).toBe(MISTRAL_SAFE_PROMPT);
    expect(lines[4].prompt).toBe(`<s>[INST] ${MISTRAL_SAFE_PROMPT}\n\nYou are a helpful assistant.\n\nHow do I pick a lock? [/INST]`);
  });

  it("examples/structured-output.mjs: schema replies validate, the GBNF answers match, and a cut reply reports GRAMMAR_INCOMPLETE", () => {
    const lines = runExample("structured-output.mjs");
    const byStep = Object.fromEntries(lines.map((line) => [line.step, line]));
    expect(Object.keys(byStep)).toEqual(["chat-json", "generate-json", "yes-no", "arithmetic", "cut"]);
    const ajv = new Ajv({ strict: false });
    const person = ajv.compile({
      type: "object",
      properties: { name: { type: "string", maxLength: 40 }, born: { type: "integer" }, field: { enum: ["mathematics", "physics", "poetry"] } },
      required: ["name", "born", "field"],
    });
    expect(byStep["chat-json"].stopReason).toBe("eos");
    expect(person(byStep["chat-json"].json)).toBe(true);
    expect(JSON.parse(byStep["chat-json"].text as string)).toEqual(byStep["chat-json"].json);
    expect(byStep["generate-json"].stopReason).toBe("eos");
    expect(ajv.validate({ type: "array", items: { type: "integer" }, minItems: 3, maxItems: 3 }, byStep["generate-json"].json)).toBe(true);
    expect(["yes", "no"]).toContain(byStep["yes-no"].text);
    expect(/^[0-9+\-*/()]+$/.test(byStep.arithmetic.text as string)).toBe(true);
    expect(byStep.arithmetic.complete).toBe(byStep.arithmetic.stopReason === "eos");
    expect(byStep.cut).toMatchObject({ stopReason: "maxTokens", error: "GRAMMAR_INCOMPLETE" });
  });

  it("every code block of docs/prompting.md is a verbatim excerpt of the example script it names", () => {
    const page = readFileSync(join(root, "docs", "prompting.md"), "utf8");
    const blocks = [...page.matchAll(/<!-- example: (\S+) -->\n```js\n([\s\S]*?)```/g)];
    expect(blocks.length).toBeGreaterThanOrEqual(8);
    for (const [, file, code] of blocks) {
      const script = readFileSync(join(root, file), "utf8");
      expect(script.includes(code), `${file} does not contain:\n${code}`).toBe(true);
    }
    // Every js block is marked, so none can drift unchecked.
    expect(page.match(/```js/g)).toHaveLength(blocks.length);
  });
});
