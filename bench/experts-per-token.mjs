// Experts per token: what top-1 routing saves, and what it costs in quality, against the model's top-2.
//
//   node bench/experts-per-token.mjs [model.gguf ...] [--threads N]
//
// Without paths it builds Mixtral-8x7B-shaped slices into .cache/models (the real dimensions: 4096 wide,
// 14336 FFN, 32 heads, 8 KV heads, 8 experts top-2, Q4_0; 1 and 2 layers, synthetic weights) and also prints
// the per-layer cost (2-layer minus 1-layer), which is what scales to the real 32 layers.
// Quality: mean KL(top-2 ‖ top-1) and top-1 agreement of next-token distributions, teacher-forced over real
// English text. Speed: decode (one token per eval, varied tokens so routing varies) and prefill (one batch).
// Needs dist/ (npx tsc -p tsconfig.json).
import { Mixtral } from "../dist/model.js";
import { GgmlType } from "../dist/gguf/types.js";
import { cachedTestModel } from "../dist/testing/index.js";

const TEXT =
  "In the beginning God created the heaven and the earth. And the earth was without form, and void; and darkness was " +
  "upon the face of the deep. And the Spirit of God moved upon the face of the waters. And God said, Let there be " +
  "light: and there was light. And God saw the light, that it was good: and God divided the light from the darkness. " +
  "And God called the light Day, and the darkness he called Night. And the evening and the morning were the first day.";

const args = process.argv.slice(2);
const threadsAt = args.indexOf("--threads");
const threads = threadsAt >= 0 ? Number(args.splice(threadsAt, 2)[1]) : undefined;
const MIXTRAL_SLICE = { nEmbd: 4096, nFf: 14336, nHeads: 32, nHeadsKv: 8, nExperts: 8, nExpertsUsed: 2, type: GgmlType.Q4_0, contextLength: 32768 };
const paths = args.length > 0 ? args : [await cachedTestModel({ ...MIXTRAL_SLICE, nLayers: 1 }), await cachedTestModel({ ...MIXTRAL_SLICE, nLayers: 2 })];

function softmax64(logits) {
  let max = -Infinity;
  for (const v of logits) if (v > max) max = v;
  const p = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += p[i] = Math.exp(logits[i] - max);
  for (let i = 0; i < p.length; i++) p[i] /= sum;
  return p;
}

function kl(p, q) {
  let d = 0;
  for (let i = 0; i < p.length; i++) if (p[i] > 0) d += p[i] * Math.log(p[i] / Math.max(q[i], 1e-300));
  return d;
}

function argmax(a) {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

async function distributions(model, k, tokens) {
  const session = model.createSession({ contextSize: tokens.length + 8, expertsPerToken: k });
  const out = [];
  for (const token of tokens) out.push(softmax64(await session.eval([token])));
  session.dispose();
  return out;
}

/** ms per token, wall and CPU (all threads), for decode and prefill; k=top-2 and k=1 alternate round by round so
 * that a busy period of the (shared) machine hits both, and each figure is the least disturbed round's. */
async function measure(model, tokens, rounds = 5) {
  const best = {};
  const keep = (key, wall, cpu) => {
    const b = (best[key] ??= { wall: Infinity, cpu: Infinity });
    b.wall = Math.min(b.wall, wall);
    b.cpu = Math.min(b.cpu, cpu);
  };
  const timed = async (work) => {
    const cpu0 = process.cpuUsage();
    const wall0 = performance.now();
    await work();
    const cpu = process.cpuUsage(cpu0);
    return [performance.now() - wall0, (cpu.user + cpu.system) / 1000];
  };
  const sessions = new Map([[model.info.nExpertsUsed, null], [1, null]]);
  for (const k of sessions.keys()) sessions.set(k, model.createSession({ contextSize: 512, expertsPerToken: k }));
  for (let round = 0; round < rounds; round++) {
    for (const [k, session] of sessions) {
      session.reset();
      await session.eval(tokens.slice(0, 16));
      const steps = 16;
      const [wall, cpu] = await timed(async () => {
        for (let i = 0; i < steps; i++) await session.eval([tokens[16 + i]]);
      });
      keep(`decode k=${k}`, wall / steps, cpu / steps);
      session.reset();
      const batch = tokens.slice(0, 64);
      const [pWall, pCpu] = await timed(() => session.eval(batch));
      keep(`prefill k=${k}`, pWall / batch.length, pCpu / batch.length);
    }
  }
  for (const session of sessions.values()) session.dispose();
  return best;
}

const rows = [];
for (const path of paths) {
  const model = await Mixtral.load(path, threads === undefined ? {} : { threads });
  const text = model.tokenizer.encode(TEXT);
  const tokens = Array.from(text).slice(0, 96);
  const top2 = await distributions(model, model.info.nExpertsUsed, tokens);
  const top1 = await distributions(model, 1, tokens);
  let klSum = 0, klMax = 0, agree = 0;
  for (let i = 0; i < tokens.length; i++) {
    const d = kl(top2[i], top1[i]);
    klSum += d;
    klMax = Math.max(klMax, d);
    if (argmax(top2[i]) === argmax(top1[i])) agree++;
  }
  const timing = await measure(model, tokens);
  const row = {
    model: path.split("/").at(-1), layers: model.info.nLayers, threads: model.threads, positions: tokens.length,
    meanKl: klSum / tokens.length, maxKl: klMax, top1Agreement: agree / tokens.length, msPerToken: timing,
  };
  rows.push(row);
  console.log(JSON.stringify(row));
  await model.dispose();
}
if (args.length === 0 && rows.length === 2) {
  // Per layer = 2-layer minus 1-layer; a 32-layer model = the 1-layer cost + 31 more layers.
  const [one, two] = rows;
  const out = {};
  for (const key of Object.keys(one.msPerToken)) {
    for (const clock of ["wall", "cpu"]) {
      const perLayer = two.msPerToken[key][clock] - one.msPerToken[key][clock];
      out[`${key} ${clock}: per layer`] = perLayer;
      out[`${key} ${clock}: 32 layers`] = one.msPerToken[key][clock] + 31 * perLayer;
    }
  }
  console.log(JSON.stringify(out, null, 1));
}
