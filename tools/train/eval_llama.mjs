// Checks the exported model with llama.cpp (the devDependency node-llama-cpp): it loads the file, tokenizes the
// held-out text exactly as the fixture's ids, writes greedy continuations, and reports held-out perplexity by
// teacher forcing under the same window protocol as tools/train/corpus.py (windows of context_length tokens
// overlapping by one, each from an empty context; every token after a window's first is scored once).
//
//   node tools/train/eval_llama.mjs [--model models/kjv-mixtral.gguf] [--fixture test/fixtures/kjv-heldout.json]
//                                   [--out .cache/kjv/llama-eval.json] [--new-tokens 64] [--threads 2]
import { writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";

import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const { values: args } = parseArgs({
  options: {
    model: { type: "string", default: "models/kjv-mixtral.gguf" },
    fixture: { type: "string", default: "test/fixtures/kjv-heldout.json" },
    out: { type: "string", default: ".cache/kjv/llama-eval.json" },
    "new-tokens": { type: "string", default: "64" },
    threads: { type: "string", default: "2" },
    prompts: { type: "string", default: "In the beginning|And the LORD spake unto Moses, saying,|Blessed are the" },
  },
});
const newTokens = Number(args["new-tokens"]);

const llama = await getLlama({ gpu: false, logLevel: LlamaLogLevel.warn });
const model = await llama.loadModel({ modelPath: args.model });
const contextLength = model.trainContextSize;
const context = await model.createContext({ contextSize: contextLength, batchSize: contextLength, threads: Number(args.threads) });
const sequence = context.getSequence();
const bos = model.tokens.bos;
const eos = model.tokens.eos;
const fixture = JSON.parse(await readFile(args.fixture, "utf8"));

// Tokenizer: llama.cpp's SentencePiece over the exported vocabulary must reproduce mistral-tokenizer-js's ids.
let tokenizerMismatches = 0;
for (const chapter of fixture.chapters) {
  const ours = chapter.ids.slice(1, -1);
  const theirs = Array.from(model.tokenize(chapter.text));
  if (theirs.length !== ours.length || theirs.some((id, i) => id !== ours[i])) {
    tokenizerMismatches++;
    const at = theirs.findIndex((id, i) => id !== ours[i]);
    console.log(`tokenizer mismatch in ${chapter.ref} at token ${at}: llama.cpp ${theirs.slice(at, at + 5)} vs ${ours.slice(at, at + 5)}`);
  }
}
console.log(`tokenizer: ${fixture.chapters.length - tokenizerMismatches}/${fixture.chapters.length} held-out chapters tokenized identically`);

// Greedy continuations.
const greedy = [];
for (const prompt of args.prompts.split("|")) {
  const promptIds = [bos, ...model.tokenize(prompt)];
  await sequence.clearHistory();
  const ids = [];
  for await (const token of sequence.evaluate(promptIds, { temperature: 0 })) {
    if (token === eos) break;
    ids.push(token);
    if (ids.length >= newTokens) break;
  }
  const text = model.detokenize(ids);
  greedy.push({ prompt, promptIds, ids, text });
  console.log(`greedy ${JSON.stringify(prompt)} -> ${JSON.stringify(text)}`);
}

// Held-out perplexity by teacher forcing.
const started = Date.now();
let nll = 0;
let scored = 0;
let windows = 0;
for (const chapter of fixture.chapters) {
  for (let start = 0; start < chapter.ids.length - 1; start += contextLength - 1) {
    const window = chapter.ids.slice(start, start + contextLength);
    await sequence.clearHistory();
    const input = window.map((id, i) => (i < window.length - 1 ? [id, { generateNext: { probabilities: true } }] : id));
    const outputs = await sequence.controlledEvaluate(input);
    for (let i = 0; i < window.length - 1; i++) {
      const probability = outputs[i]?.next.probabilities?.get(window[i + 1]);
      if (probability === undefined) throw new Error(`no probability for token ${window[i + 1]} in ${chapter.ref}`);
      nll -= Math.log(probability);
      scored++;
    }
    windows++;
  }
}
const loss = nll / scored;
const seconds = (Date.now() - started) / 1000;
console.log(`llama.cpp held-out loss ${loss.toFixed(4)} nats/token, perplexity ${Math.exp(loss).toFixed(3)} over ${scored} tokens in ${windows} windows (${seconds.toFixed(0)} s)`);

writeFileSync(args.out, JSON.stringify({
  model: args.model, contextLength, heldoutLoss: loss, heldoutPpl: Math.exp(loss), scoredTokens: scored, windows,
  tokenizerMismatches, greedy,
}, null, 1));
await context.dispose();
await model.dispose();
