// A custom sampling loop: evaluate tokens on a session yourself and choose each next token with the built-in
// samplers composed as plain functions (penalties → top-k → min-p → temperature → draw), seeded so a run can be
// repeated exactly. Then the same idea in one call: a `sampler` function in chat.send.
//
//   node examples/custom-sampling.mjs [model.gguf]
//
// Without a model path it builds a small synthetic Mixtral-architecture model into .cache/ (its weights are
// random, so the text is gibberish; the loop is what matters).
import { Mixtral, createRandom, samplers } from "mixtral-native";
import { cachedTestModel } from "mixtral-native/testing";

const path = process.argv[2] ?? (await cachedTestModel({}));
const model = await Mixtral.load(path);
const { tokenizer } = model;

// ---- 1. The loop, by hand -------------------------------------------------------------------------------------
const session = model.createSession({ contextSize: 512 });
const random = createRandom(42); // same seed, same text: across runs, processes and machines
const decoder = tokenizer.createDecoder({ continuation: true });
const generated = [];
let logits = await session.eval(tokenizer.encode("[INST] Write a haiku about experts. [/INST]"));
const work = new Float32Array(logits.length); // one buffer for every step: the samplers can write in place

for (let step = 0; step < 48; step++) {
  let l = samplers.penalties(logits, generated.slice(-64), { repeatPenalty: 1.1, presencePenalty: 0.2 }, work);
  l = samplers.topK(l, 40, work);
  l = samplers.minP(l, 0.05, work);
  l = samplers.temperature(l, 0.8, work);
  const token = samplers.draw(l, random);
  if (token === tokenizer.eos) break;
  generated.push(token);
  process.stdout.write(decoder.push(token));
  logits = await session.eval([token]); // the returned array is reused: read it before the next eval
}
process.stdout.write(decoder.flush() + "\n");

// ---- 2. The same in a chat: `sampler` replaces temperature/top-k/top-p/min-p for this call ----------------------
const chat = model.createChat({ systemPrompt: "Answer with one word." });
const reply = await chat.send("Pick a colour.", {
  maxTokens: 16,
  seed: 7, // seeds ctx.random
  repeatPenalty: 1.1, // bias and penalties still run before your function
  sampler: (candidateLogits, ctx) => samplers.draw(samplers.temperature(samplers.topK(candidateLogits, 5), 0.7), ctx.random),
});
console.log(JSON.stringify({ text: reply.text, stopReason: reply.stopReason, usage: reply.usage }));

await model.dispose();
