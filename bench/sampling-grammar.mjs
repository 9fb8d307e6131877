// Benchmarks of sampling and grammar masking on the real 32000-token Mistral vocabulary.
// Run: npx tsc -p tsconfig.json && node bench/sampling-grammar.mjs
// Reports CPU µs (process.cpuUsage, robust on a shared machine) and wall µs per call.
import { createRandom, createSampler, Grammar, TokenVocabulary } from "../dist/index.js";
import { TokenType, loadMistralV1Vocabulary } from "../dist/testing/mistral-vocab.js";

function measure(label, calls, run) {
  for (let i = 0; i < Math.min(50, calls); i++) run(i); // let the JIT settle
  const cpu = process.cpuUsage();
  const wall = performance.now();
  for (let i = 0; i < calls; i++) run(i);
  const cpuUs = (process.cpuUsage(cpu).user + process.cpuUsage(cpu).system) / calls;
  const wallUs = ((performance.now() - wall) * 1000) / calls;
  console.log(`${label.padEnd(58)} ${cpuUs.toFixed(1).padStart(8)} µs cpu ${wallUs.toFixed(1).padStart(8)} µs wall`);
}

const random = createRandom(1);
const gaussian = () => Math.sqrt(-2 * Math.log(1 - random.nextFloat())) * Math.cos(2 * Math.PI * random.nextFloat());
const flat = Float32Array.from({ length: 32000 }, () => random.nextFloat() * 16 - 8);
// Closer to a language model: a few strong candidates over a Gaussian floor.
const peaked = Float32Array.from({ length: 32000 }, () => gaussian() * 2);
for (let i = 0; i < 8; i++) peaked[Math.floor(random.nextFloat() * 32000)] = 8 + i;

console.log("## Sampling, 32000 logits");
for (const [name, logits] of [["peaked", peaked], ["flat", flat]]) {
  const cases = [
    ["greedy (temperature 0)", { temperature: 0 }],
    ["default chain (topK 40, topP 0.95, minP 0.05, T 0.8)", {}],
    ["topK 40 only", { topK: 40, topP: 1, minP: 0 }],
    ["default + repeat/frequency/presence penalties", { repeatPenalty: 1.1, frequencyPenalty: 0.1, presencePenalty: 0.1 }],
    ["topP 0.95 + minP 0.05, no topK", { topK: 0 }],
    ["temperature 1 over everything", { temperature: 1, topK: 0, topP: 1, minP: 0 }],
    ["typicalP 0.9, no topK", { topK: 0, typicalP: 0.9 }],
  ];
  for (const [label, options] of cases) {
    const sampler = createSampler({ ...options, seed: 1 });
    sampler.accept(Array.from({ length: 64 }, (_, i) => i * 7));
    measure(`${name}: ${label}`, 300, () => sampler.sample(logits));
  }
}

console.log("\n## Grammar masking, Mistral v1 vocabulary");
const vocab = await loadMistralV1Vocabulary();
const encoder = new TextEncoder();
const pieces = vocab.tokens.map((token, id) => {
  const type = vocab.tokenTypes[id];
  if (type === TokenType.CONTROL || type === TokenType.UNKNOWN) return new Uint8Array(0);
  if (type === TokenType.BYTE) return Uint8Array.of(parseInt(token.slice(3, 5), 16));
  return encoder.encode(token.replaceAll("\u2581", " "));
});
let cpu = process.cpuUsage();
const vocabulary = TokenVocabulary.from(pieces, { endTokens: [vocab.eosId] });
console.log(`vocabulary trie: ${vocabulary.nodeCount} nodes, built in ${(process.cpuUsage(cpu).user / 1000).toFixed(0)} ms cpu`);

const schemas = {
  person: { type: "object", properties: { name: { type: "string", maxLength: 20 }, age: { type: "integer" }, tags: { type: "array", items: { enum: ["a", "b"] }, maxItems: 3 } }, required: ["name"] },
  todo: { type: "object", properties: { title: { type: "string", maxLength: 40 }, done: { type: "boolean" }, score: { type: "number" } }, required: ["title", "done"] },
  shapes: { type: "array", items: { oneOf: [{ type: "object", properties: { kind: { const: "a" }, v: { type: "integer" } }, required: ["kind", "v"] }, { type: "object", properties: { kind: { const: "b" }, s: { type: "string", maxLength: 8 } }, required: ["kind", "s"] }] }, minItems: 1, maxItems: 4 },
  anyJson: {},
};
const logits = new Float32Array(32000);
for (const [name, schema] of Object.entries(schemas)) {
  for (const pass of ["first use (cold automaton and masks)", "schema reused (warm)"]) {
    cpu = process.cpuUsage();
    const grammar = Grammar.fromJsonSchema(schema);
    const compileMs = process.cpuUsage(cpu).user / 1000;
    let maskCpu = 0;
    let maskWall = 0;
    let worst = 0;
    let tokens = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const matcher = grammar.createMatcher(vocabulary);
      const sampler = createSampler({ temperature: 1, topK: 0, topP: 1, minP: 0, seed });
      for (let step = 0; step < 200 && !matcher.isFinished; step++) {
        for (let i = 0; i < 32000; i++) logits[i] = random.nextFloat() * 10;
        const c = process.cpuUsage();
        const w = performance.now();
        matcher.applyMask(logits);
        const spent = process.cpuUsage(c);
        maskWall += (performance.now() - w) * 1000;
        maskCpu += spent.user + spent.system;
        worst = Math.max(worst, spent.user + spent.system);
        tokens++;
        matcher.acceptToken(sampler.sample(logits));
      }
    }
    console.log(
      `${name.padEnd(8)} ${pass.padEnd(38)} mask ${(maskCpu / tokens).toFixed(0).padStart(5)} µs cpu/token, ${(maskWall / tokens).toFixed(0).padStart(5)} µs wall, worst ${(worst / 1000).toFixed(1)} ms, ${tokens} tokens, compile ${compileMs.toFixed(1)} ms`,
    );
  }
}
