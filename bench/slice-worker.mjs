// One engine, one trial, in its own process so load time and peak RSS are its own:
//   node bench/slice-worker.mjs <ours|ours-copied|ours-repacked|llama> <model.gguf> <threads> <tokens.json> <decodeTokens>
// ours-copied and ours-repacked load with weights: "copied" or "repacked" instead of the default mapping.
// Prints one JSON line: { loadMs, coldPrefillTokensPerSecond, prefillTokensPerSecond, decodeTokensPerSecond, peakRssBytes }.
// Cold prefill is the first evaluation of the prompt after load: it also pays for the first touch of every weight
// page and compute buffer (about 2-4 us per 4 KiB page on this VM). The prefill that counts, as llama-bench counts
// it after its warm-up run, is the second: the prompt again, from an empty cache, minus the token decode starts with.
import { readFileSync } from "node:fs";

const [engine, modelPath, threadsArg, tokensPath, decodeArg] = process.argv.slice(2);
const threads = Number(threadsArg);
const decodeTokens = Number(decodeArg);
const prompt = JSON.parse(readFileSync(tokensPath, "utf8"));
const contextSize = prompt.length + decodeTokens + 16;

async function ours(weights) {
  const { Mixtral } = await import("../dist/index.js");
  const loadStart = performance.now();
  const model = await Mixtral.load(modelPath, { threads, weights });
  const session = model.createSession({ contextSize, batchSize: 512 });
  const loadMs = performance.now() - loadStart;

  let start = performance.now();
  await session.eval(prompt);
  const coldPrefillSeconds = (performance.now() - start) / 1000;

  session.reset();
  start = performance.now();
  await session.eval(prompt.slice(0, -1));
  const prefillSeconds = (performance.now() - start) / 1000;
  // The first sample evaluates the prompt's last token; the next decodeTokens samples are single-token evals.
  let count = 0;
  for await (const _ of session.generate(prompt.slice(-1), { temperature: 0, maxTokens: decodeTokens + 1 })) {
    if (count++ === 0) start = performance.now();
  }
  const decodeSeconds = (performance.now() - start) / 1000;
  await model.dispose();
  return { loadMs, coldPrefillSeconds, prefillSeconds, decodeSeconds, decoded: count - 1 };
}

async function llama() {
  const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
  const instance = await getLlama({ gpu: false, build: "never", maxThreads: threads, logLevel: LlamaLogLevel.error });
  const loadStart = performance.now();
  const model = await instance.loadModel({ modelPath, gpuLayers: 0 });
  const context = await model.createContext({ contextSize, batchSize: 512, sequences: 1, threads: { ideal: threads, min: threads } });
  const sequence = context.getSequence();
  const loadMs = performance.now() - loadStart;

  let start = performance.now();
  await sequence.evaluateWithoutGeneratingNewTokens(prompt);
  const coldPrefillSeconds = (performance.now() - start) / 1000;

  await sequence.clearHistory();
  start = performance.now();
  await sequence.evaluateWithoutGeneratingNewTokens(prompt.slice(0, -1));
  const prefillSeconds = (performance.now() - start) / 1000;
  // The first yield evaluates the prompt's last token; the next decodeTokens yields are single-token evals.
  let count = 0;
  for await (const _ of sequence.evaluate(prompt.slice(-1), { temperature: 0 })) {
    if (count++ === 0) start = performance.now();
    if (count === decodeTokens + 1) break;
  }
  const decodeSeconds = (performance.now() - start) / 1000;
  await context.dispose();
  await model.dispose();
  await instance.dispose();
  return { loadMs, coldPrefillSeconds, prefillSeconds, decodeSeconds, decoded: count - 1 };
}

const result = engine === "llama" ? await llama() : await ours(engine === "ours-copied" ? "copied" : engine === "ours-repacked" ? "repacked" : "mapped");
process.stdout.write(
  `${JSON.stringify({
    engine,
    loadMs: result.loadMs,
    coldPrefillTokensPerSecond: prompt.length / result.coldPrefillSeconds,
    prefillTokensPerSecond: (prompt.length - 1) / result.prefillSeconds,
    decodeTokensPerSecond: result.decoded / result.decodeSeconds,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
  })}\n`,
);
