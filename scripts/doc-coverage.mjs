// Which public exports lack a doc comment, or a doc comment with an @example.
//
//   node scripts/doc-coverage.mjs            # runs typedoc (JSON only) and lists the gaps
//   node scripts/doc-coverage.mjs api.json   # reads typedoc JSON written earlier (typedoc --json api.json)
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const REFERENCE = 4194304; // typedoc ReflectionKind.Reference: a re-export

/** Every export of every entry point: { module, name, file, documented, example }. */
export function docCoverage(api) {
  const byId = new Map();
  const index = (reflection) => {
    byId.set(reflection.id, reflection);
    for (const child of reflection.children ?? []) index(child);
  };
  index(api);
  const comment = (r) => r.comment ?? r.signatures?.[0]?.comment ?? r.getSignature?.comment;
  const modules = api.children?.some((c) => c.kind === 2) ? api.children : [api];
  const rows = [];
  for (const module of modules) {
    for (const exported of module.children ?? []) {
      const target = exported.kind === REFERENCE ? (byId.get(exported.target) ?? exported) : exported;
      const found = comment(target);
      rows.push({
        module: module.name,
        name: exported.name,
        file: target.sources?.[0]?.fileName ?? "?",
        documented: found !== undefined,
        example: found?.blockTags?.some((tag) => tag.tag === "@example") ?? false,
      });
    }
  }
  return rows;
}

/** Runs typedoc with the project's typedoc.json and returns the parsed JSON. */
export function typedocJson(root, extraArgs = []) {
  const dir = mkdtempSync(join(tmpdir(), "mixtral-native-docs-"));
  const json = join(dir, "api.json");
  execFileSync(process.execPath, [join(root, "node_modules", "typedoc", "bin", "typedoc"), "--json", json, "--validation.notDocumented", "false", ...extraArgs], {
    cwd: root,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
  return JSON.parse(readFileSync(json, "utf8"));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const root = join(fileURLToPath(import.meta.url), "..", "..");
  const api = process.argv[2] ? JSON.parse(readFileSync(process.argv[2], "utf8")) : typedocJson(root, ["--out", join(tmpdir(), "mixtral-native-docs-html")]);
  const rows = docCoverage(api);
  const gaps = rows.filter((r) => !r.example);
  console.log(`${rows.length} exports, ${rows.length - gaps.length} with an example`);
  for (const r of gaps) console.log(`${r.documented ? "no example" : "no doc    "}  ${r.module}: ${r.name}  (${r.file})`);
}
