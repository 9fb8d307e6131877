// npm run bench:tokenizer: encode throughput (MB/s of UTF-8 input) of this library's tokenizer, llama.cpp
// (node-llama-cpp tokenize) and mistral-tokenizer-js on ~600 KB of mixed multilingual text, in one run.
// Runs on the built dist/ (npm run build first). A benchmark, not a test: numbers depend on the machine and load.
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

import { benchmarkText } from "./text.mjs";
import { JsSpmEncoder } from "./ts-encoder.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
if (!existsSync(join(root, "dist", "index.js"))) {
  console.error("dist/ is missing: run `npm run build` (or `npx tsc -p tsconfig.json` after the native build) first");
  process.exit(1);
}
const { Tokenizer, GgufWriter, GgufValueType } = await import(join(root, "dist", "index.js"));
const { loadMistralV1Vocabulary } = await import(join(root, "dist", "testing", "mistral-vocab.js"));
const mistralTokenizerJs = (await import("mistral-tokenizer-js")).default;
const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");

const text = benchmarkText();
const bytes = Buffer.byteLength(text);
const vocab = await loadMistralV1Vocabulary();

async function vocabGguf() {
  const dir = join(root, ".cache", "tokenizer");
  const path = join(dir, "bench-mistral-v1-vocab.gguf");
  if (existsSync(path)) return path;
  mkdirSync(dir, { recursive: true });
  const w = new GgufWriter();
  const u32 = (key, value) => w.set(key, GgufValueType.UINT32, value);
  w.set("general.architecture", GgufValueType.STRING, "llama");
  u32("llama.context_length", 4096);
  u32("llama.embedding_length", 64);
  u32("llama.block_count", 1);
  u32("llama.feed_forward_length", 128);
  u32("llama.attention.head_count", 2);
  u32("llama.attention.head_count_kv", 2);
  u32("llama.rope.dimension_count", 32);
  w.set("llama.attention.layer_norm_rms_epsilon", GgufValueType.FLOAT32, 1e-5);
  w.set("tokenizer.ggml.model", GgufValueType.STRING, "llama");
  w.set("tokenizer.ggml.tokens", GgufValueType.ARRAY, vocab.tokens, GgufValueType.STRING);
  w.set("tokenizer.ggml.scores", GgufValueType.ARRAY, vocab.scores, GgufValueType.FLOAT32);
  w.set("tokenizer.ggml.token_type", GgufValueType.ARRAY, vocab.tokenTypes, GgufValueType.INT32);
  u32("tokenizer.ggml.bos_token_id", 1);
  u32("tokenizer.ggml.eos_token_id", 2);
  u32("tokenizer.ggml.unknown_token_id", 0);
  await w.write(path);
  return path;
}

/** Best of `runs` timed calls after one warm-up; returns [ms, result]. */
function time(runs, work) {
  let result = work();
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    result = work();
    best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e6);
  }
  return [best, result];
}

async function timeAsync(runs, work) {
  let result = await work();
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    result = await work();
    best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e6);
  }
  return [best, result];
}

const tokenizer = Tokenizer.fromVocabulary(vocab);
const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.disabled });
const model = await llama.loadModel({ modelPath: await vocabGguf(), vocabOnly: true });
const jsEncoder = new JsSpmEncoder(vocab.tokens, vocab.scores);

// Each tokenizer keeps a cache of the segments (words) it has seen, so the honest number is the first pass over
// text it has not seen: a fresh tokenizer (built outside the timing) for every run.
let oursMs = Infinity;
let ours;
for (let run = 0; run < 8; run++) {
  const fresh = Tokenizer.fromVocabulary(vocab);
  const start = process.hrtime.bigint();
  ours = fresh.encode(text, { addBos: false });
  oursMs = Math.min(oursMs, Number(process.hrtime.bigint() - start) / 1e6);
}
const rows = [];
rows.push(["mixtral-native encode, first pass (C++)", oursMs]);
const [warmMs] = time(8, () => tokenizer.encode(text, { addBos: false }));
rows.push(["mixtral-native encode, same text again (warm cache)", warmMs]);
const [asyncMs] = await timeAsync(8, () => tokenizer.encodeAsync(text, { addBos: false }));
rows.push(["mixtral-native encodeAsync (worker thread, fresh cache per call)", asyncMs]);
const [llamaMs, reference] = time(3, () => model.tokenize(text, false));
rows.push(["llama.cpp (node-llama-cpp tokenize)", llamaMs]);
const [mistralMs, mistral] = time(2, () => mistralTokenizerJs.encode(text, false, true));
rows.push(["mistral-tokenizer-js", mistralMs]);
const [jsMs, js] = time(5, () => jsEncoder.encode(text));
rows.push(["same algorithm in plain JS (bench/ts-encoder.mjs)", jsMs]);

const same = (a, b) => a.length === b.length && Array.prototype.every.call(a, (x, i) => x === b[i]);
const agreement = `ids equal llama.cpp's: ours ${same(ours, reference)}, plain JS ${same(js, reference)}, mistral-tokenizer-js ${same(mistral, reference)}`;

const mbps = (ms) => bytes / 1e6 / (ms / 1000);
console.log(`Input: ${(bytes / 1024).toFixed(0)} KiB of UTF-8 (${text.length} UTF-16 units), ${reference.length} tokens. ${agreement}.`);
console.log(`Node ${process.version}, ${process.arch}; best of several runs each.\n`);
console.log(`Ours (first pass) vs llama.cpp: ${(llamaMs / oursMs).toFixed(1)}×; vs mistral-tokenizer-js: ${(mistralMs / oursMs).toFixed(0)}×.\n`);
console.log("| encoder | ms | MB/s | × mistral-tokenizer-js | × llama.cpp |");
console.log("|---|---:|---:|---:|---:|");
for (const [name, ms] of rows) {
  console.log(`| ${name} | ${ms.toFixed(1)} | ${mbps(ms).toFixed(2)} | ${(mistralMs / ms).toFixed(1)} | ${(llamaMs / ms).toFixed(2)} |`);
}
await model.dispose();
await llama.dispose();
