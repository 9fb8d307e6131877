// The KL table of docs/quantization.md: every quantization type's teacher-forced next-token distributions against
// the F32 model's, on a synthetic Mixtral-architecture model (real Mistral v1 vocabulary, random weights) quantized
// by quantizeModel. Needs the build (`npx tsc -p tsconfig.json`, the addon).
//
//   node bench/quant-kl.mjs [--layers 4] [--embd 512] [--ff 1024] [--threads 2] [--types q8_0,q4_k_m]
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";

import { Mixtral, QUANTIZE_TYPES, quantizeModel, readGguf } from "../dist/index.js";
import { packageRoot } from "../dist/native.js";
import { cachedTestModel } from "../dist/testing/index.js";

const { values: args } = parseArgs({
  options: {
    layers: { type: "string", default: "4" },
    embd: { type: "string", default: "512" },
    ff: { type: "string", default: "1024" },
    threads: { type: "string", default: "2" },
    types: { type: "string", default: QUANTIZE_TYPES.join(",") },
  },
});

/** The model the table is measured on: Mixtral's routing (8 experts, top 2) and GQA 4, smaller matrices. */
export function klModelOptions(nLayers = 4, nEmbd = 512, nFf = 1024) {
  return { nEmbd, nFf, nLayers, nHeads: 8, nHeadsKv: 2, nExperts: 8, nExpertsUsed: 2 };
}

export const KL_PROMPT =
  "In the beginning God created the heaven and the earth. And the earth was without form, and void; and darkness " +
  "was upon the face of the deep. And the Spirit of God moved upon the face of the waters.";

function softmax(logits) {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  const p = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += p[i] = Math.exp(logits[i] - max);
  for (let i = 0; i < p.length; i++) p[i] /= sum;
  return p;
}

/** Teacher-forced p(next | tokens[0..i]) for every i. */
export async function distributions(path, tokens, threads) {
  const model = await Mixtral.load(path, { threads });
  try {
    const session = model.createSession();
    const out = [];
    for (const token of tokens) out.push(softmax(await session.eval([token])));
    return out;
  } finally {
    await model.dispose();
  }
}

/** Mean over positions of KL(p || q) and how often the argmaxes agree. */
export function compare(expected, actual) {
  let kl = 0, agree = 0;
  for (let i = 0; i < expected.length; i++) {
    const p = expected[i], q = actual[i];
    let sum = 0, pBest = 0, qBest = 0;
    for (let j = 0; j < p.length; j++) {
      if (p[j] > 0) sum += p[j] * Math.log(p[j] / Math.max(q[j], 1e-300));
      if (p[j] > p[pBest]) pBest = j;
      if (q[j] > q[qBest]) qBest = j;
    }
    kl += sum;
    if (pBest === qBest) agree++;
  }
  return { meanKl: kl / expected.length, top1: agree / expected.length };
}

async function main() {
  const threads = Number(args.threads);
  const options = klModelOptions(Number(args.layers), Number(args.embd), Number(args.ff));
  const dir = join(packageRoot, ".cache", "quant-kl");
  mkdirSync(dir, { recursive: true });
  const f32 = await cachedTestModel(options);
  const probe = await Mixtral.load(f32, { threads });
  const tokens = probe.tokenizer.encode(KL_PROMPT).slice(0, 48);
  await probe.dispose();
  const reference = await distributions(f32, tokens, threads);
  const f32Bytes = (await readGguf(f32)).tensors.reduce((sum, t) => sum + t.byteLength, 0);

  console.log(`model: ${JSON.stringify(options)}, ${tokens.length} positions\n`);
  console.log("| type | bits per weight | mean KL vs F32 | top-1 agreement | tensor types |");
  console.log("|---|---:|---:|---:|---|");
  for (const type of args.types.split(",")) {
    const output = join(dir, `${type}.gguf`);
    const result = await quantizeModel(f32, output, { type, threads });
    const bytes = (await readGguf(output)).tensors.reduce((sum, t) => sum + t.byteLength, 0);
    const { meanKl, top1 } = compare(reference, await distributions(output, tokens, threads));
    const histogram = Object.entries(result.tensorTypes).map(([t, n]) => `${t} ${n}`).join(", ");
    console.log(`| ${type} | ${((32 * bytes) / f32Bytes).toFixed(2)} | ${meanKl.toExponential(2)} | ${(100 * top1).toFixed(1)}% | ${histogram} |`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
