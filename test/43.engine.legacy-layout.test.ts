// Late-2023 Mixtral files store each expert as its own 2-D tensor (blk.N.ffn_gate.E.weight) instead of one 3-D
// tensor per projection (issue 4, item 4). The test models of one seed carry the same numbers in both layouts, so
// the engine must produce the same logits from either, bit for bit: only the address of each expert differs.
// (Dense models run through the same code: test 40.)
import { describe, expect, it } from "vitest";

import { GgmlType } from "../lib/gguf/types.js";
import { Mixtral } from "../lib/model.js";
import { cachedTestModel } from "../lib/testing/test-model.js";
import { expectSameLogits } from "./helpers/logits.js";

const SHAPE = { nEmbd: 128, nFf: 256, nLayers: 2, nHeads: 4, nHeadsKv: 2, nExperts: 8, nExpertsUsed: 2 } as const;
const TEXT =
  "And God called the light Day, and the darkness he called Night. And the evening and the morning were the first day. " +
  "And God said, Let there be a firmament in the midst of the waters, and let it divide the waters from the waters.";

interface Run {
  layout: string;
  tensorCount: number;
  stepwise: Float32Array[];
  batched: Float32Array;
  routing: number[][];
}

async function run(path: string, tokens?: number[]): Promise<Run & { tokens: number[] }> {
  const model = await Mixtral.load(path, { threads: 2 });
  try {
    const ids = tokens ?? Array.from(model.tokenizer.encode(TEXT)).slice(0, 48);
    const session = model.createSession();
    const stepwise: Float32Array[] = [];
    for (const id of ids) stepwise.push(Float32Array.from(await session.eval([id])));
    const routing = session.routing().layers.map((layer) => layer.counts);
    const batched = Float32Array.from(await model.createSession().eval(ids));
    return { layout: model.info.expertLayout, tensorCount: model.info.tensorCount, stepwise, batched, routing, tokens: ids };
  } finally {
    await model.dispose();
  }
}

describe("43 engine: the legacy per-expert layout gives the same results as the merged layout", () => {
  it.each([
    ["F32", GgmlType.F32],
    ["Q4_0", GgmlType.Q4_0],
    ["Q8_0", GgmlType.Q8_0],
  ])("%s: token-by-token and batched logits and the routing counts are bit-identical", async (_label, type) => {
    const merged = await run(await cachedTestModel({ ...SHAPE, type }));
    const legacy = await run(await cachedTestModel({ ...SHAPE, type, layout: "legacy" }), merged.tokens);
    expect(merged.layout).toBe("merged");
    expect(legacy.layout).toBe("legacy");
    // 3 merged tensors per layer become 3 × 8 per-expert ones
    expect(legacy.tensorCount - merged.tensorCount).toBe(SHAPE.nLayers * 3 * (SHAPE.nExperts - 1));
    expectSameLogits(legacy.stepwise, merged.stepwise);
    expectSameLogits(legacy.batched, merged.batched);
    expect(legacy.routing).toEqual(merged.routing);
    // the routing spreads over the experts, so every expert's slab was read in both layouts
    for (const counts of merged.routing) expect(counts.every((count) => count > 0)).toBe(true);
  });
});
