// Cost of constrained generation per token on the Mixtral slice (Mixtral 8x7B's real layer shapes, 1 layer,
// Q4_0, built once into .cache/ by the project's own writer): a JSON-schema (or GBNF) generation against the same
// model sampling freely.
//
//   npx tsc -p tsconfig.json && node bench/constrained.mjs [--threads 1] [--tokens 48] [--rounds 5] [model.gguf]
//
// Two measurements, CPU time (process.cpuUsage: every thread of the process) and wall time:
// 1. Breakdown, one decode step at a time: the eval, then unconstrained sampling, then the constrained step
//    (copy the logits, mask, sample, accept, check whether the grammar is complete), on the same logits.
// 2. End to end: session.generate with and without the constraint, prompt evaluated beforehand, per token, the
//    two runs of a pair back to back (order alternating); the overhead is the median of the pairs' ratios. This
//    includes what the breakdown cannot show: generate computes the next mask while the native threads evaluate.
// Cold = the first generation with a schema in this process (automaton states and masks are built as they are
// reached); warm = later generations, which reuse them.
import { parseArgs } from "node:util";

import { Grammar, GgmlType, Mixtral, createSampler } from "../dist/index.js";
import { grammarVocabulary } from "../dist/constrained.js";
import { cachedTestModel } from "../dist/testing/index.js";

const { values: args, positionals } = parseArgs({
  options: {
    threads: { type: "string", default: "1" },
    tokens: { type: "string", default: "48" },
    rounds: { type: "string", default: "5" },
  },
  allowPositionals: true,
});
const threads = Number(args.threads);
const maxTokens = Number(args.tokens);
const rounds = Number(args.rounds);

export const SLICE_1_LAYER = {
  nEmbd: 4096, nFf: 14336, nHeads: 32, nHeadsKv: 8, nExperts: 8, nExpertsUsed: 2, nLayers: 1,
  type: GgmlType.Q4_0, contextLength: 32768,
};

const CONSTRAINTS = {
  "person (object, enum array, integer)": {
    jsonSchema: {
      type: "object",
      properties: {
        name: { type: "string", maxLength: 24 },
        age: { type: "integer" },
        roles: { type: "array", items: { enum: ["admin", "dev", "ops"] }, maxItems: 3 },
        active: { type: "boolean" },
      },
      required: ["name", "age", "roles", "active"],
    },
  },
  "list (12+ strings; never done in 48 tokens)": {
    jsonSchema: {
      type: "object",
      properties: { items: { type: "array", items: { type: "string", maxLength: 40 }, minItems: 12 } },
      required: ["items"],
    },
  },
  "arithmetic (GBNF)": { grammar: 'root ::= expr\nexpr ::= term (("+" | "-") term)*\nterm ::= [0-9]+ | "(" expr ")"' },
};

const path = positionals[0] ?? (await cachedTestModel(SLICE_1_LAYER));
const model = await Mixtral.load(path, { threads });
const { tokenizer } = model;
const NO_EOS = new Map([[tokenizer.eos, -Infinity]]);
const prompt = tokenizer.encode("[INST] Give me the record as JSON. [/INST]");

function clock() {
  const cpu = process.cpuUsage();
  const wall = performance.now();
  return () => {
    const used = process.cpuUsage(cpu);
    return { cpu: (used.user + used.system) / 1000, wall: performance.now() - wall };
  };
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};

/** Part 1: per-step breakdown on the same logits. */
async function breakdown(grammar, seed) {
  const session = model.createSession({ contextSize: 512 });
  await session.eval(prompt.subarray(0, prompt.length - 1));
  const vocabulary = grammarVocabulary(tokenizer);
  const matcher = grammar.createMatcher(vocabulary);
  const free = createSampler({ temperature: 1, seed });
  const constrained = createSampler({ temperature: 1, seed });
  const masked = new Float32Array(tokenizer.vocabSize);
  const totals = { eval: { cpu: 0, wall: 0 }, sample: { cpu: 0, wall: 0 }, constrained: { cpu: 0, wall: 0 } };
  const add = (key, t) => {
    totals[key].cpu += t.cpu;
    totals[key].wall += t.wall;
  };
  let steps = 0;
  let token = prompt[prompt.length - 1];
  while (steps < maxTokens) {
    let stop = clock();
    const logits = await session.eval([token]);
    add("eval", stop());
    stop = clock();
    free.sample(logits);
    add("sample", stop());
    stop = clock();
    masked.set(logits);
    matcher.applyMask(masked);
    token = constrained.sample(masked);
    matcher.acceptToken(token);
    const complete = matcher.isFinished || (matcher.canEnd && !matcher.canContinue);
    add("constrained", stop());
    steps++;
    if (complete) break;
  }
  session.dispose();
  return { steps, totals };
}

/** Part 2: one generate() call after the prompt is cached; returns ms per generated token. */
async function endToEnd(options, seed) {
  const session = model.createSession({ contextSize: 512 });
  await session.eval(prompt);
  const stop = clock();
  const steps = session.generate("", { temperature: 1, seed, maxTokens, ...options });
  let step = await steps.next();
  while (!step.done) step = await steps.next();
  const t = stop();
  session.dispose();
  const n = step.value.tokens.length;
  return { n, cpu: t.cpu / n, wall: t.wall / n, stopReason: step.value.stopReason };
}

console.log(`model ${path.split("/").at(-1)}, threads ${threads}, maxTokens ${maxTokens}, rounds ${rounds}`);
const vocabularyClock = clock();
grammarVocabulary(tokenizer);
console.log(`vocabulary trie for the tokenizer: ${vocabularyClock().cpu.toFixed(0)} ms CPU (once per model)`);

for (const [name, options] of Object.entries(CONSTRAINTS)) {
  console.log(`\n## ${name}`);
  const compileClock = clock();
  const grammar = options.grammar !== undefined ? Grammar.fromGbnf(options.grammar) : Grammar.fromJsonSchema(options.jsonSchema);
  console.log(`compile: ${compileClock().cpu.toFixed(1)} ms CPU`);

  for (let round = 0; round < rounds; round++) {
    const { steps, totals } = await breakdown(grammar, round + 1);
    const per = (key, clockName) => (totals[key][clockName] / steps).toFixed(3);
    const overhead = (clockName) => (((totals.constrained[clockName] - totals.sample[clockName]) / (totals.eval[clockName] + totals.sample[clockName])) * 100).toFixed(2);
    console.log(
      `breakdown ${round === 0 ? "cold" : "warm"} (${steps} steps): eval ${per("eval", "cpu")} ms CPU / ${per("eval", "wall")} wall; ` +
        `sample ${per("sample", "cpu")} / ${per("sample", "wall")}; mask+sample+accept ${per("constrained", "cpu")} / ${per("constrained", "wall")}; ` +
        `overhead ${overhead("cpu")}% CPU, ${overhead("wall")}% wall`,
    );
  }

  const free = [];
  const constrained = [];
  for (let round = 0; round < rounds; round++) {
    // Pairs back to back, order alternating, so load changes on the shared machine hit both alike.
    if (round % 2 === 0) {
      free.push(await endToEnd({ logitBias: NO_EOS }, round + 1));
      constrained.push(await endToEnd(options, round + 1));
    } else {
      constrained.push(await endToEnd(options, round + 1));
      free.push(await endToEnd({ logitBias: NO_EOS }, round + 1));
    }
  }
  const row = (label, runs) =>
    `${label}: ${median(runs.map((r) => r.cpu)).toFixed(2)} ms CPU/token, ${median(runs.map((r) => r.wall)).toFixed(2)} ms wall/token ` +
    `(tokens ${runs.map((r) => r.n).join(",")}; ${[...new Set(runs.map((r) => r.stopReason))].join("/")})`;
  console.log(row("generate, unconstrained", free));
  console.log(row("generate, constrained  ", constrained));
  const pairRatio = (clockName) => median(constrained.map((r, i) => r[clockName] / free[i][clockName] - 1)) * 100;
  console.log(`end-to-end overhead (median of ${rounds} pairs): ${pairRatio("cpu").toFixed(1)}% CPU, ${pairRatio("wall").toFixed(1)}% wall`);
}

await model.dispose();
