// npm run bench:tokenizer: encode throughput (MB/s of UTF-8 input) of this library's tokenizer, llama.cpp
// (node-llama-cpp tokenize) and mistral-tokenizer-js on ~600 KB of mixed multilingual text, in one run.
// Runs on the built dist/ (npm run build first). A benchmark, not a test: numbers depend on the machine and load.
import { existsSync, mkdirSync } from "node:fs";
import os from "node:os";
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

/**
 * Best wall and CPU time (process.cpuUsage: all threads, so encodeAsync's worker counts) over `runs` calls of
 * `work`, after one warm-up call. `prepare` runs untimed before each call and its result is passed to `work`.
 */
async function measure(runs, work, prepare = () => undefined) {
  let result = await work(prepare(-1));
  let wall = Infinity;
  let cpu = Infinity;
  for (let i = 0; i < runs; i++) {
    const input = prepare(i);
    const cpuStart = process.cpuUsage();
    const start = process.hrtime.bigint();
    result = await work(input);
    wall = Math.min(wall, Number(process.hrtime.bigint() - start) / 1e6);
    const used = process.cpuUsage(cpuStart);
    cpu = Math.min(cpu, (used.user + used.system) / 1000);
  }
  return { wall, cpu, result };
}

const tokenizer = Tokenizer.fromVocabulary(vocab);
const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.disabled });
const model = await llama.loadModel({ modelPath: await vocabGguf(), vocabOnly: true });
const jsEncoder = new JsSpmEncoder(vocab.tokens, vocab.scores);
const otherTexts = [1, 2, 3, 4, 5, 6].map((seed) => benchmarkText(bytes, seed));
const noBos = { addBos: false };

const rows = [];
// A tokenizer remembers the segments (words) it has seen. "First pass": a fresh tokenizer (built untimed) on the
// text. "Unseen text": a tokenizer that has encoded other text of the same kind, on text generated with another
// seed. "Same text again": the cache holds every segment.
const freshTokenizer = () => {
  const fresh = Tokenizer.fromVocabulary(vocab);
  globalThis.gc?.(); // collect the previous tokenizers now rather than inside the timed call
  return fresh;
};
const first = await measure(6, (fresh) => fresh.encode(text, noBos), freshTokenizer);
rows.push(["mixtral-native encode, first pass on a fresh tokenizer", first]);
tokenizer.encode(text, noBos);
rows.push(["mixtral-native encode, warm tokenizer, unseen text", await measure(5, (other) => tokenizer.encode(other, noBos), (i) => otherTexts[i + 1])]);
rows.push(["mixtral-native encode, same text again", await measure(6, () => tokenizer.encode(text, noBos))]);
rows.push(["mixtral-native encodeAsync (worker, fresh cache per call)", await measure(6, () => tokenizer.encodeAsync(text, noBos))]);
const llamaRun = await measure(3, () => model.tokenize(text, false));
rows.push(["llama.cpp (node-llama-cpp tokenize)", llamaRun]);
const mistralWhole = await measure(2, () => mistralTokenizerJs.encode(text, false, true));
rows.push(["mistral-tokenizer-js", mistralWhole]);
// mistral-tokenizer-js slows down on long inputs, so it also gets the text in ~10 KB pieces cut at line ends;
// the ratios use whichever of its two numbers is better.
const pieces = [];
for (let start = 0; start < text.length; ) {
  const cut = text.indexOf("\n", start + 10_000);
  const end = cut < 0 ? text.length : cut + 1;
  pieces.push(text.slice(start, end));
  start = end;
}
const mistralPieces = await measure(2, () => pieces.map((piece) => mistralTokenizerJs.encode(piece, false, true)));
rows.push([`mistral-tokenizer-js, in ${pieces.length} pieces of ~10 KB`, mistralPieces]);
const jsRun = await measure(4, () => jsEncoder.encode(text));
rows.push(["same algorithm in plain JS (bench/ts-encoder.mjs)", jsRun]);

const same = (a, b) => a.length === b.length && Array.prototype.every.call(a, (x, i) => x === b[i]);
const reference = llamaRun.result;
const agreement =
  `ids equal llama.cpp's: ours ${same(first.result, reference)}, plain JS ${same(jsRun.result, reference)}, ` +
  `mistral-tokenizer-js ${same(mistralWhole.result, reference)}`;
const mistralCpu = Math.min(mistralWhole.cpu, mistralPieces.cpu);
const mbps = (ms) => (bytes / 1e6 / (ms / 1000)).toFixed(2);

console.log(`Input: ${(bytes / 1024).toFixed(0)} KiB of UTF-8 (${text.length} UTF-16 units), ${reference.length} tokens. ${agreement}.`);
console.log(`Node ${process.version}, ${process.arch}, ${os.cpus()[0]?.model ?? "unknown CPU"}, load average ${os.loadavg()[0].toFixed(1)}.`);
console.log("Best of several runs each. Ratios use CPU time, which a busy machine disturbs less than wall time.\n");
console.log(
  `First pass vs llama.cpp: ${(llamaRun.cpu / first.cpu).toFixed(1)}×; ` +
    `vs mistral-tokenizer-js (its best): ${(mistralCpu / first.cpu).toFixed(1)}×.\n`,
);
console.log("| encoder | wall ms | MB/s (wall) | MB/s (CPU) | × mistral-tokenizer-js | × llama.cpp |");
console.log("|---|---:|---:|---:|---:|---:|");
for (const [name, run] of rows) {
  console.log(
    `| ${name} | ${run.wall.toFixed(1)} | ${mbps(run.wall)} | ${mbps(run.cpu)} | ${(mistralCpu / run.cpu).toFixed(1)} | ${(llamaRun.cpu / run.cpu).toFixed(2)} |`,
  );
}
await model.dispose();
await llama.dispose();
