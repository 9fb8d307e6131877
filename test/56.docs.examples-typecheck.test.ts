/**
 * Every ```ts example in the API reference type-checks: the blocks are pulled out of typedoc's JSON, written to
 * .cache/doc-examples/*.ts and compiled with the project's compiler options, "mixtral-native" and
 * "mixtral-native/testing" mapped to lib/. An example may leave out the imports of this package's exports and
 * use the variables a reader has in hand (`model`, `session`, `chat`, `logits`, …), declared below; anything
 * else it uses must exist with the names and types it gives.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import ts from "typescript";
import { describe, expect, it } from "vitest";

// @ts-expect-error: a plain .mjs script without types
import { docCoverage, typedocJson } from "../scripts/doc-coverage.mjs";

const root = join(import.meta.dirname, "..");
const outDir = join(root, ".cache", "doc-examples");

/** The variables examples use without defining them: what a reader of that page has already made. */
const CONTEXT = `
declare const path: string;
declare const model: import("mixtral-native").Mixtral;
declare const session: import("mixtral-native").Session;
declare const chat: import("mixtral-native").Chat;
declare const tokenizer: import("mixtral-native").Tokenizer;
declare const tokens: number[];
declare const longPrompt: number[];
declare const bytes: Uint8Array;
declare const messages: import("mixtral-native").ChatMessage[];
declare const logits: Float32Array;
declare const pieces: Uint8Array[];
declare const grammar: import("mixtral-native").Grammar;
declare const vocabulary: import("mixtral-native").TokenVocabulary;
declare const sampler: import("mixtral-native").Sampler;
declare const writer: import("mixtral-native").GgufWriter;
declare const text: string;
declare const history: number[];
declare const generated: number[];
`;

interface Row {
  module: string;
  name: string;
}

interface Example {
  where: string;
  code: string;
}

/** Every ```ts block of every comment in the typedoc JSON, with the reflection path it documents. */
function collectExamples(node: unknown, where: string, out: Example[]): void {
  if (Array.isArray(node)) {
    for (const item of node) collectExamples(item, where, out);
    return;
  }
  if (node === null || typeof node !== "object") return;
  const record = node as Record<string, unknown>;
  const here = typeof record.name === "string" && record.kind !== undefined ? (where ? `${where}.${record.name}` : record.name) : where;
  const comment = record.comment as { summary?: { kind: string; text: string }[]; blockTags?: { content: { kind: string; text: string }[] }[] } | undefined;
  if (comment !== undefined) {
    const parts = [...(comment.summary ?? []), ...(comment.blockTags ?? []).flatMap((tag) => tag.content)];
    for (const part of parts) {
      const match = part.kind === "code" ? /^```ts\n([\s\S]*?)\n?```$/.exec(part.text) : null;
      if (match !== null) out.push({ where: here, code: match[1] });
    }
  }
  for (const [key, value] of Object.entries(record)) if (key !== "comment") collectExamples(value, here, out);
}

const IMPORT = /^import\s+(?:type\s+)?\{([^}]*)\}\s+from\s+"([^"]+)";?\s*$|^import\s+(\w+)\s+from\s+"[^"]+";?\s*$/;

/** The example as a module: its own imports, the package's other exports, the context, and its body in a function. */
function exampleModule(code: string, indexNames: string[], testingNames: string[]): string {
  const lines = code.split("\n");
  const imports = lines.filter((line) => IMPORT.test(line));
  const body = lines.filter((line) => !IMPORT.test(line));
  const imported = new Set(
    imports.flatMap((line) => {
      const match = IMPORT.exec(line)!;
      if (match[3] !== undefined) return [match[3]];
      return match[1].split(",").map((name) => name.trim().replace(/^type\s+/, "").split(/\s+as\s+/).at(-1)!).filter(Boolean);
    }),
  );
  const fromIndex = indexNames.filter((name) => !imported.has(name));
  const fromTesting = testingNames.filter((name) => !imported.has(name) && !indexNames.includes(name));
  return [
    ...imports,
    `import { ${fromIndex.join(", ")} } from "mixtral-native";`,
    `import { ${fromTesting.join(", ")} } from "mixtral-native/testing";`,
    CONTEXT,
    "export async function example(): Promise<void> {",
    ...body,
    "}",
    "",
  ].join("\n");
}

describe("56 API reference examples", () => {
  it("every ```ts example in the doc comments of both entry points type-checks against lib/", () => {
    const api = typedocJson(root, ["--out", join(root, ".cache", "docs-api-56")]);
    const rows = docCoverage(api) as Row[];
    const indexNames = rows.filter((r) => r.module === "index").map((r) => r.name);
    const testingNames = rows.filter((r) => r.module === "testing").map((r) => r.name);
    const examples: Example[] = [];
    collectExamples(api, "", examples);
    // At least one example per export (test 55 checks each has one); members add more.
    expect(examples.length).toBeGreaterThanOrEqual(rows.length);

    rmSync(outDir, { recursive: true, force: true });
    mkdirSync(outDir, { recursive: true });
    const files = examples.map((example, i) => {
      const file = join(outDir, `${String(i).padStart(3, "0")}.${example.where.replace(/[^\w.]+/g, "_")}.ts`);
      writeFileSync(file, exampleModule(example.code, indexNames, testingNames));
      return file;
    });

    const config = ts.readConfigFile(join(root, "tsconfig.json"), ts.sys.readFile);
    const { options } = ts.parseJsonConfigFileContent(config.config, ts.sys, root);
    // The one ambient declaration lib/ needs, which tsconfig.json's include brings in for the build.
    const program = ts.createProgram([...files, join(root, "lib", "testing", "mistral-tokenizer-js.d.ts")], {
      ...options,
      noEmit: true,
      declaration: false,
      declarationMap: false,
      sourceMap: false,
      rootDir: root,
      baseUrl: root,
      paths: { "mixtral-native": ["lib/index.ts"], "mixtral-native/testing": ["lib/testing/index.ts"] },
    });
    const problems = ts.getPreEmitDiagnostics(program).map((diagnostic) => {
      const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n");
      if (diagnostic.file === undefined) return message;
      const { line } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start ?? 0);
      return `${diagnostic.file.fileName.replace(`${root}/`, "")}:${line + 1}: ${message}`;
    });
    expect(problems).toEqual([]);
  });
});
