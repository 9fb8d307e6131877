// Constrained generation: the output always parses. A JSON schema in chat.send (the reply's `json` is the parsed
// value), a JSON schema in session.generate, GBNF grammars (yes/no, arithmetic), and what a reply cut short gives.
// Each step prints one JSON line.
//
//   node examples/structured-output.mjs [model.gguf]
//
// Without a path it uses the demo model in models/ when the package has it, else a small synthetic model.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

import { Grammar, GrammarError, Mixtral } from "mixtral-native";
import { cachedTestModel } from "mixtral-native/testing";

const demo = fileURLToPath(new URL("../models/kjv-mixtral.gguf", import.meta.url));
const path = process.argv[2] ?? (existsSync(demo) ? demo : await cachedTestModel({}));
const model = await Mixtral.load(path);

// ---- A JSON schema in a chat ----------------------------------------------------------------------------------
const personSchema = {
  type: "object",
  properties: {
    name: { type: "string", maxLength: 40 },
    born: { type: "integer" },
    field: { enum: ["mathematics", "physics", "poetry"] },
  },
  required: ["name", "born", "field"],
};
const chat = model.createChat({ systemPrompt: "Reply with JSON." });
const reply = await chat.send("Ada Lovelace, born 1815, mathematician.", {
  jsonSchema: personSchema,
  temperature: 0.7,
  seed: 1,
  maxTokens: 200,
});
console.log(JSON.stringify({ step: "chat-json", json: reply.json, text: reply.text, stopReason: reply.stopReason }));

// ---- A JSON schema in generate --------------------------------------------------------------------------------
const session = model.createSession();
const steps = session.generate("[INST] List three primes as JSON. [/INST]", {
  jsonSchema: { type: "array", items: { type: "integer" }, minItems: 3, maxItems: 3 },
  temperature: 0.7,
  seed: 2,
  maxTokens: 120,
});
let step = await steps.next();
while (!step.done) step = await steps.next();
console.log(JSON.stringify({ step: "generate-json", json: step.value.json, stopReason: step.value.stopReason }));

// ---- GBNF: yes or no, and arithmetic ----------------------------------------------------------------------------
const yesNo = await chat.send("Is the sea salty? Answer yes or no.", { grammar: 'root ::= "yes" | "no"', temperature: 0 });
console.log(JSON.stringify({ step: "yes-no", text: yesNo.text, stopReason: yesNo.stopReason }));

const arithmetic = Grammar.fromGbnf(`
root   ::= expr
expr   ::= term (("+" | "-") term)*
term   ::= factor (("*" | "/") factor)*
factor ::= [0-9]{1,3} | "(" expr ")"
`);
const sum = await chat.send("Write an arithmetic expression.", {
  grammar: arithmetic,
  temperature: 1,
  seed: 3,
  maxTokens: 24,
  logitBias: new Map([[model.tokenizer.eos, 4]]), // EOS is allowed only where the expression is complete
});
console.log(JSON.stringify({ step: "arithmetic", text: sum.text, stopReason: sum.stopReason, complete: arithmetic.matches(sum.text) }));

// ---- Cut short: stopReason "maxTokens", and json throws a typed error, never a partial value ----------------------
const cut = await chat.send("Another person, please.", { jsonSchema: personSchema, maxTokens: 4 });
let error;
try {
  cut.json;
} catch (caught) {
  error = caught instanceof GrammarError ? caught.code : String(caught);
}
console.log(JSON.stringify({ step: "cut", text: cut.text, stopReason: cut.stopReason, error }));

await model.dispose();
