// What a drop-oldest-turns context shift costs: the turn that drops turns re-evaluates everything after the
// system prompt, against an ordinary turn that evaluates only the new message.
//
//   node bench/context-shift.mjs [model.gguf ...] [--threads N] [--context N]
//
// Without paths it uses the Mixtral-8x7B-shaped slices of bench/experts-per-token.mjs (1 and 2 layers, Q4_0) and
// prints per-layer costs (2-layer minus 1-layer), which scale to the real 32 layers. It also times, in plain JS,
// what llama.cpp's alternative would have to do for the same tokens at Mixtral 8x7B's full size (move the kept
// K/V rows down and re-rotate K by the RoPE delta), as an estimate of a native shift.
// Needs dist/ (npx tsc -p tsconfig.json).
import { Mixtral } from "../dist/model.js";
import { GgmlType } from "../dist/gguf/types.js";
import { cachedTestModel } from "../dist/testing/index.js";

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(name);
  return at >= 0 ? Number(args.splice(at, 2)[1]) : fallback;
};
const threads = option("--threads", 1);
const contextSize = option("--context", 1024);
const MIXTRAL_SLICE = { nEmbd: 4096, nFf: 14336, nHeads: 32, nHeadsKv: 8, nExperts: 8, nExpertsUsed: 2, type: GgmlType.Q4_0, contextLength: 32768 };
const paths = args.length > 0 ? args : [await cachedTestModel({ ...MIXTRAL_SLICE, nLayers: 1 }), await cachedTestModel({ ...MIXTRAL_SLICE, nLayers: 2 })];

const SYSTEM = "You are a careful assistant. Answer briefly, cite the passage you rely on, and say when you do not know.";
const WORDS = "the light day night earth waters heaven form void deep spirit face evening morning first second divided called saw good said let there be".split(" ");
const message = (turn) => Array.from({ length: 60 }, (_, i) => WORDS[(turn * 7 + i * 3) % WORDS.length]).join(" ") + "?";

async function timed(work) {
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  const result = await work();
  const cpu = process.cpuUsage(cpu0);
  return { result, wall: performance.now() - wall0, cpu: (cpu.user + cpu.system) / 1000 };
}

const runs = [];
for (const path of paths) {
  const model = await Mixtral.load(path, { threads });
  const chat = model.createChat({ systemPrompt: SYSTEM, contextSize });
  const turns = [];
  for (let turn = 0; turn < 60; turn++) {
    const { result, wall, cpu } = await timed(() => chat.send(message(turn), { temperature: 0, maxTokens: 24, logitBias: new Map([[2, -Infinity]]) }));
    const evaluated = result.usage.promptTokens - result.usage.cachedTokens + result.usage.completionTokens - 1;
    turns.push({ turn, ...result.usage, droppedMessages: result.droppedMessages, evaluated, wall, cpu });
    if (turns.filter((t) => t.droppedMessages > 0).length === 2) break;
  }
  const drops = turns.filter((t) => t.droppedMessages > 0);
  const ordinary = turns.filter((t) => t.droppedMessages === 0 && t.turn > 0);
  const mean = (list, key) => list.reduce((s, t) => s + t[key], 0) / list.length;
  const run = {
    model: path.split("/").at(-1), layers: model.info.nLayers, threads, contextSize,
    turnsBetweenDrops: drops.length === 2 ? drops[1].turn - drops[0].turn : null,
    ordinary: { evaluated: mean(ordinary, "evaluated"), wall: mean(ordinary, "wall"), cpu: mean(ordinary, "cpu") },
    drop: { dropped: drops[0].droppedMessages, promptTokens: drops[0].promptTokens, cachedTokens: drops[0].cachedTokens, evaluated: drops[0].evaluated, wall: drops[0].wall, cpu: drops[0].cpu },
  };
  runs.push(run);
  console.log(JSON.stringify(run));
  await model.dispose();
}

if (args.length === 0 && runs.length === 2) {
  const [one, two] = runs;
  const scale = (key, clock) => one[key][clock] + 31 * (two[key][clock] - one[key][clock]);
  console.log(JSON.stringify({
    "32 layers: ordinary turn cpu ms": scale("ordinary", "cpu"),
    "32 layers: drop turn cpu ms": scale("drop", "cpu"),
    "32 layers: drop turn wall ms": scale("drop", "wall"),
  }));
}

// A native shift at Mixtral 8x7B's size (32 layers, 8 KV heads of 128, f16 cache) for the rows the drop turn kept:
// memmove of K and V, then each K row through fp32, rotated by the position delta, and back.
{
  const kept = runs[0].drop.cachedTokens > 0 ? runs[0].drop.promptTokens - runs[0].drop.cachedTokens : runs[0].drop.promptTokens;
  const layers = 32, heads = 8, headDim = 128, discard = 256;
  const rowsPerHead = kept;
  const cache = new Uint16Array((rowsPerHead + discard) * headDim);
  const row = new Float32Array(headDim);
  const cos = new Float32Array(headDim / 2), sin = new Float32Array(headDim / 2);
  for (let i = 0; i < headDim / 2; i++) {
    const angle = -discard * Math.pow(1e6, (-2 * i) / headDim);
    cos[i] = Math.cos(angle);
    sin[i] = Math.sin(angle);
  }
  const f16 = new Float32Array(1);
  const start = performance.now();
  for (let l = 0; l < layers; l++) {
    for (let h = 0; h < heads; h++) {
      for (const isK of [true, false]) {
        cache.copyWithin(0, discard * headDim, (discard + rowsPerHead) * headDim);
        if (!isK) continue;
        for (let r = 0; r < rowsPerHead; r++) {
          const at = r * headDim;
          for (let i = 0; i < headDim; i++) row[i] = cache[at + i] / 1024; // stands in for the fp16 decode
          for (let i = 0; i < headDim; i += 2) {
            const x = row[i], y = row[i + 1];
            row[i] = x * cos[i >> 1] - y * sin[i >> 1];
            row[i + 1] = x * sin[i >> 1] + y * cos[i >> 1];
          }
          for (let i = 0; i < headDim; i++) cache[at + i] = (f16[0] = row[i]) & 0xffff; // and the encode
        }
      }
    }
  }
  console.log(JSON.stringify({ "native shift estimate (JS), kept rows": kept, ms: performance.now() - start, bytesMoved: kept * layers * heads * headDim * 2 * 2 }));
}
