// Child program of test 45, run as `node --single-threaded decode-allocations.mjs MODEL...` with LD_PRELOAD set
// to alloc-count.so (a MODEL written `repacked:PATH` loads with weights: "repacked"): counts the heap allocations
// made off the main thread (where evaluations run) in each phase, and prints them as JSON, one entry per model.
// --single-threaded keeps V8's own background threads idle.
import { Mixtral } from "../../dist/index.js";

/** Allocations made so far on threads other than the main one (alloc-count.so reports them as ipcSent). */
const allocations = () => process.resourceUsage().ipcSent;

async function drain(steps) {
  let count = 0;
  for await (const _token of steps) count++;
  return count;
}

const results = [];
for (const arg of process.argv.slice(2)) {
  const repacked = arg.startsWith("repacked:");
  const model = await Mixtral.load(repacked ? arg.slice("repacked:".length) : arg, { threads: 2, weights: repacked ? "repacked" : "mapped" });
  const session = model.createSession({ contextSize: 512 });
  const greedy = { temperature: 0, logitBias: new Map([[model.tokenizer.eos, -Infinity]]) };
  const prompt = model.tokenizer.encode("In the beginning God created the heaven and the earth.");

  const beforeWarmUp = allocations();
  const warmUpTokens = await drain(session.generate(prompt, { ...greedy, maxTokens: 20 }));
  const afterWarmUp = allocations();
  const decodeTokens = await drain(session.generate([], { ...greedy, maxTokens: 300 }));
  const afterDecode = allocations();
  await session.eval(Array.from({ length: 64 }, (_, i) => (i * 7919 + 13) % 32000));
  const afterPrefill = allocations();
  // Control: the tokenizer encodes long text on a libuv worker and allocates there, so the meter must move.
  await model.tokenizer.encodeAsync("and the evening and the morning were the first day ".repeat(400));
  const afterControl = allocations();

  results.push({
    model: arg,
    warmUpTokens,
    decodeTokens,
    warmUp: afterWarmUp - beforeWarmUp,
    decode: afterDecode - afterWarmUp,
    prefill: afterPrefill - afterDecode,
    control: afterControl - afterPrefill,
  });
  await model.dispose();
}
process.stdout.write(JSON.stringify(results));
