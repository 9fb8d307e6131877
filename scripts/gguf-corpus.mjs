// Writes the GGUF corpus (hostile cases, valid tiny models, every truncation of a small file) into
// .cache/gguf-corpus with manifest.tsv, using the same generator as test/11.gguf.hostile.test.ts.
// Used by test-asan.mjs and fuzz.mjs; run alone with `node scripts/gguf-corpus.mjs`.
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const root = fileURLToPath(new URL("..", import.meta.url));
export const corpusDir = join(root, ".cache", "gguf-corpus");

/** Compiles the TypeScript generator and writes the corpus; returns [{ file, code }]. */
export async function writeCorpus(dir = corpusDir) {
  const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
  execFileSync(process.execPath, [tsc, "-p", join(root, "scripts", "tsconfig.gguf-corpus.json")], { stdio: "inherit" });
  const generator = pathToFileURL(join(root, ".cache", "gguf-corpus-build", "test", "helpers", "hostile.js"));
  const { writeGgufCorpus } = await import(generator.href);
  return writeGgufCorpus(dir);
}

/** Runs a command, echoing it, and throws with its exit status on failure. */
export function run(command, args, options = {}) {
  console.log(`$ ${[command, ...args].join(" ")}`);
  execFileSync(command, args, { stdio: "inherit", ...options });
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const entries = await writeCorpus();
  console.log(`wrote ${entries.length} files to ${corpusDir}`);
}
