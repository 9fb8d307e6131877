// npm run fuzz: libFuzzer over GgufFile::parse + bindModel (native/fuzz/gguf_fuzz.cc) with ASan + UBSan,
// seeded from the GGUF corpus, for FUZZ_SECONDS (default 300). New inputs go to .cache/gguf-fuzz/corpus,
// crashes to .cache/gguf-fuzz/ (crash-*, leak-*, timeout-*); replay one with `.cache/gguf-fuzz/gguf_fuzz <file>`.
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";

import { corpusDir, root, run, writeCorpus } from "./gguf-corpus.mjs";

const seconds = Number(process.env.FUZZ_SECONDS ?? 300);
if (!Number.isInteger(seconds) || seconds <= 0) {
  console.error(`FUZZ_SECONDS must be a positive integer; got ${JSON.stringify(process.env.FUZZ_SECONDS)}`);
  process.exit(2);
}
const outDir = join(root, ".cache", "gguf-fuzz");
const workCorpus = join(outDir, "corpus");
const binary = join(outDir, "gguf_fuzz");

if (!existsSync(join(corpusDir, "manifest.tsv"))) await writeCorpus();
mkdirSync(workCorpus, { recursive: true });
run(process.env.CXX_ASAN ?? "clang++", [
  "-std=c++17", "-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=all", "-g", "-O1",
  "-Inative", "native/fuzz/gguf_fuzz.cc", "native/gguf/gguf.cc", "native/common/huge_pages.cc", "native/model/weights.cc", "-o", binary,
], { cwd: root });

try {
  run(binary, [
    workCorpus, corpusDir,
    `-max_total_time=${seconds}`, "-timeout=10", "-rss_limit_mb=2048", "-max_len=65536",
    `-dict=${join(root, "native", "fuzz", "gguf.dict")}`, `-artifact_prefix=${outDir}/`, "-print_final_stats=1",
  ], { cwd: root, env: { ...process.env, ASAN_OPTIONS: "detect_leaks=1" } });
} catch {
  const artifacts = readdirSync(outDir).filter((f) => /^(crash|leak|timeout|oom)-/.test(f));
  console.error(`fuzz FAILED; artifacts in ${outDir}: ${artifacts.join(", ") || "none"}`);
  process.exit(1);
}
