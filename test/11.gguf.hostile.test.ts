import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { performance } from "node:perf_hooks";

import { beforeAll, describe, expect, it } from "vitest";

import { GgufError, GgufValueType, GgmlType, inspectModel, readGguf } from "../lib/index.js";
import { rawGguf } from "./helpers/gguf-layout.js";
import { everyTypeTruncations, hostileCases, type HostileCase } from "./helpers/hostile.js";

const dir = join(import.meta.dirname, "..", ".cache", "test-11-hostile");
const cases = hostileCases();

/** The GgufError a promise rejects with, and how long it took. */
async function rejection(work: () => Promise<unknown>): Promise<{ error: GgufError; ms: number }> {
  const start = performance.now();
  try {
    await work();
  } catch (error) {
    const ms = performance.now() - start;
    expect(error).toBeInstanceOf(GgufError);
    return { error: error as GgufError, ms };
  }
  throw new Error("expected the call to reject");
}

const cpuMs = ({ user, system }: NodeJS.CpuUsage) => (user + system) / 1000;

function expectMentions(error: GgufError, c: Pick<HostileCase, "mentions">): void {
  for (const words of c.mentions) expect(error.message, `message ${JSON.stringify(error.message)}`).toContain(words);
}

beforeAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
});

describe("11 gguf hostile files: each rejected with its own code, a message naming the field, in under 1 s", () => {
  it("the catalogue has at least 30 uniquely named cases and a case for every code of the hostile list", () => {
    expect(cases.length).toBeGreaterThanOrEqual(30);
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
    const codes = new Set(cases.map((c) => c.code));
    for (const code of [
      "GGUF_TRUNCATED", "GGUF_BAD_MAGIC", "GGUF_BAD_VERSION", "GGUF_BAD_COUNT", "GGUF_BAD_VALUE_TYPE", "GGUF_BAD_VALUE",
      "GGUF_BAD_STRING", "GGUF_DUPLICATE_KEY", "GGUF_BAD_ALIGNMENT", "GGUF_BAD_NAME", "GGUF_DUPLICATE_TENSOR",
      "GGUF_BAD_DIMS", "GGUF_BAD_SHAPE", "GGUF_BAD_TENSOR_TYPE", "GGUF_BAD_BLOCK", "GGUF_BAD_OFFSET", "GGUF_OVERLAP",
      "GGUF_WRONG_TYPE", "GGUF_NAN", "MODEL_UNSUPPORTED_ARCH", "MODEL_MISSING_KEY", "MODEL_MISSING_TENSOR",
      "MODEL_SHAPE_MISMATCH", "MODEL_BAD_EXPERT_COUNT", "MODEL_BAD_HEAD_COUNT", "MODEL_BAD_TOKEN_ID", "MODEL_BAD_VOCAB",
      "MODEL_BAD_TENSOR_TYPE", "MODEL_BAD_HPARAM",
    ]) {
      expect(codes, code).toContain(code);
    }
  });

  describe.each(cases)("$name", (c) => {
    let path: string;
    beforeAll(async () => {
      path = join(dir, `${c.name}.gguf`);
      await writeFile(path, await c.build(dir));
    });

    it(`readGguf ${c.level === "gguf" ? `rejects with ${c.code}` : "accepts the container"}`, async () => {
      if (c.level === "model") {
        await expect(readGguf(path, { verifyTensorData: true })).resolves.toBeDefined();
        return;
      }
      const { error, ms } = await rejection(() => readGguf(path, { verifyTensorData: true }));
      expect(error.code).toBe(c.code);
      expectMentions(error, c);
      expect(error.message.startsWith(`${path}: `)).toBe(true);
      expect(ms).toBeLessThan(1000);
    });

    it(`inspectModel rejects with ${c.code}`, async () => {
      const { error, ms } = await rejection(() => inspectModel(path, { verifyTensorData: true }));
      expect(error.code).toBe(c.code);
      expectMentions(error, c);
      expect(ms).toBeLessThan(1000);
    });
  });

  it("NaN and Inf in weights and block scales are found only when verifyTensorData is on", async () => {
    const nanCases = cases.filter((c) => c.code === "GGUF_NAN");
    expect(nanCases.length).toBeGreaterThanOrEqual(5);
    for (const c of nanCases) {
      const path = join(dir, `${c.name}.gguf`);
      await expect(inspectModel(path, { verifyTensorData: false })).resolves.toMatchObject({ architecture: "llama" });
      await expect(readGguf(path)).resolves.toBeDefined();
    }
  });

  it("the every-type file cut at every byte of its header, metadata and tensor infos gets the predicted code", async () => {
    const truncations = await everyTypeTruncations(dir);
    expect(truncations.length).toBeGreaterThan(500);
    const seen = new Map<string, number>();
    let slowest = 0;
    for (const { length, code, bytes } of truncations) {
      const path = join(dir, "truncated.gguf");
      await writeFile(path, bytes);
      const { error, ms } = await rejection(() => readGguf(path));
      expect(error.code, `cut at ${length} bytes: ${error.message}`).toBe(code);
      seen.set(code, (seen.get(code) ?? 0) + 1);
      slowest = Math.max(slowest, ms);
    }
    // Cuts inside fixed fields are truncations; cuts inside a string or array body leave a length too large.
    expect([...seen.keys()].sort()).toEqual(["GGUF_BAD_COUNT", "GGUF_TRUNCATED"]);
    expect(seen.get("GGUF_TRUNCATED")).toBeGreaterThan(100);
    expect(slowest).toBeLessThan(1000);
  });

  it("an empty file and a file of just the magic are truncated, not bad magic", async () => {
    for (const content of ["", "GG", "GGUF"]) {
      const path = join(dir, "short.gguf");
      await writeFile(path, content);
      const { error } = await rejection(() => readGguf(path));
      expect(error.code).toBe("GGUF_TRUNCATED");
    }
  });

  it("100,000 keys and 100,000 tensors are checked in linearithmic time: a duplicate name at the end costs under 1 s of CPU", async () => {
    const count = 100_000;
    const u8 = Uint8Array.of(7);
    const keys = Array.from({ length: count }, (_, i) => ({ key: `test.key.${i}`, type: GgufValueType.UINT8, value: u8 }));
    const tensorName = (i: number) => `t.${String(i).padStart(6, "0")}`;
    const tensors = Array.from({ length: count }, (_, i) => ({ name: tensorName(i), shape: [8], type: GgmlType.F32, offset: 32 * i }));
    const path = join(dir, "many.gguf");
    await writeFile(path, rawGguf(keys, tensors));
    const info = await readGguf(path);
    expect(info.metadata.size).toBe(count);
    expect(info.tensors.length).toBe(count);
    expect(info.tensors[count - 1]).toMatchObject({ name: tensorName(count - 1), offset: info.dataOffset + 32 * (count - 1) });

    // Only a complete duplicate check notices the last name repeating the first; a quadratic one needs ~10^10
    // comparisons. CPU time of the whole process (the parse runs on a libuv thread) is bounded, not wall time,
    // because the machine is shared.
    tensors[count - 1].name = tensorName(0);
    await writeFile(path, rawGguf(keys, tensors));
    let cpu = process.cpuUsage();
    const { error } = await rejection(() => readGguf(path));
    expect(error.code).toBe("GGUF_DUPLICATE_TENSOR");
    expect(error.message).toContain(`"${tensorName(0)}"`);
    expect(cpuMs(process.cpuUsage(cpu))).toBeLessThan(1000);

    keys[count - 1].key = keys[0].key;
    await writeFile(path, rawGguf(keys, []));
    cpu = process.cpuUsage();
    const duplicateKey = await rejection(() => readGguf(path));
    expect(duplicateKey.error.code).toBe("GGUF_DUPLICATE_KEY");
    expect(duplicateKey.error.message).toContain('"test.key.0"');
    expect(cpuMs(process.cpuUsage(cpu))).toBeLessThan(1000);
  });
});
