// The everyday Mixtral prompting patterns (docs/prompting.md), one after another on one model:
// 1. JSON from given fields, by asking; 2. code generation with a system prompt; 3. few-shot examples through
// the system/user/assistant roles, whose prefix the KV cache keeps across calls; 4. Mistral's guardrail prompt.
// Each pattern prints one JSON line.
//
//   node examples/prompting-patterns.mjs [model.gguf]
//
// Without a path it uses the demo model in models/ when the package has it, else a small synthetic
// Mixtral-architecture model built into .cache/ (random weights: the text is gibberish, the mechanics are real).
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

import { MISTRAL_SAFE_PROMPT, Mixtral } from "mixtral-native";
import { cachedTestModel } from "mixtral-native/testing";

const demo = fileURLToPath(new URL("../models/kjv-mixtral.gguf", import.meta.url));
const path = process.argv[2] ?? (existsSync(demo) ? demo : await cachedTestModel({}));
const model = await Mixtral.load(path);
const show = (pattern, result, extra = {}) =>
  console.log(JSON.stringify({ pattern, text: result.text, stopReason: result.stopReason, usage: result.usage, ...extra }));

// ---- 1. JSON from given fields --------------------------------------------------------------------------------
const person = { name: "Ada Lovelace", born: 1815, field: "mathematics" };
const fields = model.createChat();
const asked = await fields.send(
  `Produce only a valid JSON object with the keys "name", "born" and "field" for this person: ` +
    `${person.name}, born in ${person.born}, worked in ${person.field}. No explanation.`,
  { temperature: 0, maxTokens: 64 },
);
let parses = true;
try {
  JSON.parse(asked.text);
} catch {
  parses = false; // asking is not enough for every model: constrain it (examples/structured-output.mjs)
}
show("json-from-fields", asked, { parses });

// ---- 2. Code generation with a system prompt ------------------------------------------------------------------
const coder = model.createChat({
  systemPrompt: "You are an expert Python programmer. Reply with one fenced code block and nothing else.",
});
const code = await coder.send("Write a function fib(n) that returns the n-th Fibonacci number.", {
  temperature: 0.2,
  seed: 1,
  maxTokens: 96,
});
show("code-generation", code, { prompt: model.applyChatTemplate(coder.history.slice(0, 2), { addGenerationPrompt: true }) });

// ---- 3. Few-shot through roles --------------------------------------------------------------------------------
const examples = [
  { role: "system", content: "Classify the sentiment of the review. Answer with one word: positive or negative." },
  { role: "user", content: "The food was wonderful." },
  { role: "assistant", content: "positive" },
  { role: "user", content: "Cold soup and a rude waiter." },
  { role: "assistant", content: "negative" },
];
const classifier = model.createChat();
for (const review of ["Best pizza in town!", "The bill was wrong twice."]) {
  await classifier.setHistory(examples); // same examples, new question: the cache keeps the examples' tokens
  const label = await classifier.send(review, { temperature: 0, maxTokens: 4 });
  show("few-shot", label, { review });
}

// ---- 4. The guardrail -----------------------------------------------------------------------------------------
const guarded = model.createChat({ safePrompt: true, systemPrompt: "You are a helpful assistant." });
const prompt = model.applyChatTemplate([...guarded.history, { role: "user", content: "How do I pick a lock?" }], {
  safePrompt: true,
  addGenerationPrompt: true,
});
const careful = await guarded.send("How do I pick a lock?", { temperature: 0, maxTokens: 48 });
show("guardrail", careful, { prompt, guardrail: MISTRAL_SAFE_PROMPT });

await model.dispose();
