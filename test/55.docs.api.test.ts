import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";

import { describe, expect, it } from "vitest";

// @ts-expect-error: a plain .mjs script without types
import { docCoverage, typedocJson } from "../scripts/doc-coverage.mjs";

const root = join(import.meta.dirname, "..");


interface Row {
  module: string;
  name: string;
  file: string;
  documented: boolean;
  example: boolean;
}

describe("55 API reference", () => {
  it("typedoc builds the reference from lib/index.ts and lib/testing/index.ts, and every export of both has a doc comment with an @example", () => {
    const out = join(root, ".cache", "docs-api");
    mkdirSync(out, { recursive: true });
    const api = typedocJson(root, ["--out", out]);
    expect(existsSync(join(out, "index.html"))).toBe(true);
    const rows = docCoverage(api) as Row[];
    expect(rows.map((r) => r.module).sort()).toContain("testing");
    const names = rows.map((r) => r.name);
    for (const name of ["Mixtral", "Session", "Chat", "StateError", "ChatTemplateError", "MIXTRAL_INSTRUCT_TEMPLATE", "MISTRAL_SAFE_PROMPT", "samplers"]) {
      expect(names).toContain(name);
    }
    // Both entry points are checked whole: a new export without an example fails here, naming itself.
    expect(rows.filter((r) => r.module === "index").length).toBeGreaterThan(100);
    expect(rows.filter((r) => r.module === "testing").length).toBeGreaterThan(15);
    expect(rows.filter((r) => !r.documented).map((r) => `${r.module}: ${r.name} (${r.file})`)).toEqual([]);
    expect(rows.filter((r) => !r.example).map((r) => `${r.module}: ${r.name} (${r.file})`)).toEqual([]);
  });
});
