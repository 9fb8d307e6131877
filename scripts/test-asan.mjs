// npm run test:asan: the GGUF reader and bindModel under AddressSanitizer + UndefinedBehaviorSanitizer.
// Writes the corpus (scripts/gguf-corpus.mjs), builds native/tests/gguf_test.cc with clang, runs it over the
// corpus and fails on any sanitizer report or any file whose code differs from manifest.tsv.
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

import { corpusDir, root, run, writeCorpus } from "./gguf-corpus.mjs";

const READER_SOURCES = ["native/gguf/gguf.cc", "native/common/huge_pages.cc", "native/model/weights.cc"];
const outDir = join(root, ".cache", "asan");
const binary = join(outDir, "gguf_test");

const entries = await writeCorpus();
console.log(`corpus: ${entries.length} files in ${corpusDir}`);

mkdirSync(outDir, { recursive: true });
run(process.env.CXX_ASAN ?? "clang++", [
  "-std=c++17", "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g", "-O1", "-Wall", "-Wextra",
  "-Inative", "native/tests/gguf_test.cc", ...READER_SOURCES, "-o", binary,
], { cwd: root });

const result = spawnSync(binary, [corpusDir], {
  cwd: root,
  encoding: "utf8",
  maxBuffer: 64 << 20,
  env: {
    ...process.env,
    ASAN_OPTIONS: "detect_leaks=1:abort_on_error=0:halt_on_error=1",
    UBSAN_OPTIONS: "print_stacktrace=1:halt_on_error=1",
  },
});
process.stderr.write(result.stderr);
const sanitizerReport = /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:/.test(result.stderr);

const actual = new Map(result.stdout.trim().split("\n").map((line) => {
  const [file, code] = line.split("\t");
  return [file, code];
}));
const mismatches = entries.filter((e) => actual.get(e.file) !== e.code);
for (const e of mismatches.slice(0, 20)) console.error(`${e.file}: expected ${e.code}, got ${actual.get(e.file) ?? "nothing"}`);

if (result.status !== 0 || sanitizerReport || mismatches.length > 0) {
  console.error(`test:asan FAILED: exit status ${result.status}, sanitizer report: ${sanitizerReport}, ` +
    `${mismatches.length} of ${entries.length} files with an unexpected code`);
  process.exit(1);
}
console.log(`test:asan passed: ${entries.length} files, each with its expected code, no sanitizer report`);
