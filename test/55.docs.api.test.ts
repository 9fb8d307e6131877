import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";

import { describe, expect, it } from "vitest";

// @ts-expect-error: a plain .mjs script without types
import { docCoverage, typedocJson } from "../scripts/doc-coverage.mjs";

const root = join(import.meta.dirname, "..");

/** The modules of the chat, session, state and routing API, whose every export must carry an example. */
const CHECKED_FILES = ["lib/chat.ts", "lib/chat-template.ts", "lib/session.ts", "lib/model.ts", "lib/errors.ts"];

interface Row {
  module: string;
  name: string;
  file: string;
  documented: boolean;
  example: boolean;
}

describe("55 API reference", () => {
  it("typedoc builds the reference from lib/index.ts and lib/testing/index.ts, and the chat/session exports all have examples", () => {
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
    const checked = rows.filter((r) => CHECKED_FILES.some((file) => r.file.endsWith(file)));
    expect(checked.length).toBeGreaterThan(30);
    expect(checked.filter((r) => !r.example).map((r) => `${r.name} (${r.file})`)).toEqual([]);
  });
});
