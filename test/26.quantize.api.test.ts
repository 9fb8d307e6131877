import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { link, mkdir, open, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";

import { beforeAll, describe, expect, it } from "vitest";

import { AbortError, QuantizeError, quantizeModel, QUANTIZE_TYPES, readGguf } from "../lib/index.js";
import { quantize } from "../lib/gguf/quantize.js";
import { GgmlType } from "../lib/gguf/types.js";
import { cachedTestModel, synthesizeTensor } from "../lib/testing/test-model.js";

const root = join(import.meta.dirname, "..");
const dir = join(root, ".cache", "test-26-quantize-api");
const cli = join(root, "dist", "cli", "main.js");
// nFf 320 is a multiple of 32 but not of 256: ffn_down rows take the 32-block fallback.
const SMALL = { nEmbd: 256, nFf: 320, nLayers: 2, nHeads: 8, nHeadsKv: 2, nExperts: 8, nExpertsUsed: 2 } as const;
let input: string;

beforeAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  input = await cachedTestModel(SMALL);
});

async function readTensorBytes(path: string, tensor: { offset: number; byteLength: number }): Promise<Uint8Array> {
  const handle = await open(path, "r");
  try {
    const bytes = new Uint8Array(tensor.byteLength);
    await handle.read(bytes, 0, bytes.byteLength, tensor.offset);
    return bytes;
  } finally {
    await handle.close();
  }
}

/** The files in `dir` whose names start with `prefix` (a temporary file is `<output>.<pid>.<hex>.tmp`). */
async function leftovers(prefix: string): Promise<string[]> {
  return (await readdir(dir)).filter((name) => name.startsWith(prefix));
}

async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await promise;
  } catch (error) {
    return error as Error & { code?: string };
  }
  throw new Error("expected the call to reject");
}

describe("26 quantize: the q4_k_m mix, the data and the progress", () => {
  it("q4_k_m follows llama.cpp's Mixtral recipe: output Q6_K, attn_k/attn_v Q8_0, attn_output Q5_K, more bits for ffn_down in use_more_bits layers, 32-block fallback for 320-value rows, norms and router F32", async () => {
    const output = join(dir, "mix.gguf");
    const result = await quantizeModel(input, output, { type: "q4_k_m", threads: 2 });
    const file = await readGguf(output);
    const types = Object.fromEntries(file.tensors.map((t) => [t.name, GgmlType[t.type]]));
    expect(types).toMatchObject({
      "token_embd.weight": "Q4_K", "output.weight": "Q6_K", "output_norm.weight": "F32",
      "blk.0.attn_norm.weight": "F32", "blk.0.ffn_norm.weight": "F32", "blk.0.ffn_gate_inp.weight": "F32",
      "blk.0.attn_q.weight": "Q4_K", "blk.0.attn_k.weight": "Q8_0", "blk.0.attn_v.weight": "Q8_0",
      "blk.0.attn_output.weight": "Q5_K", "blk.0.ffn_gate_exps.weight": "Q4_K", "blk.0.ffn_up_exps.weight": "Q4_K",
      // Q4_K falls back to Q5_0; layer 1 of 2 is a use_more_bits layer: Q6_K, whose fallback is Q8_0
      "blk.0.ffn_down_exps.weight": "Q5_0", "blk.1.ffn_down_exps.weight": "Q8_0",
    });
    expect(file.metadata.get("general.file_type")?.value).toBe(15);
    expect(file.metadata.get("general.quantization_version")?.value).toBe(2);
    expect(file.metadata.get("tokenizer.ggml.tokens")?.value).toHaveLength(32000);
    expect(result.tensorTypes).toEqual(file.tensors.reduce<Record<string, number>>((counts, t) => {
      counts[GgmlType[t.type]] = (counts[GgmlType[t.type]] ?? 0) + 1;
      return counts;
    }, {}));
    expect(result.warnings).toEqual([]);
  });

  it("every quantized tensor holds exactly quantize(type, the F32 values) (rows in order, chunk boundaries invisible)", async () => {
    const output = join(dir, "mix.gguf");
    const file = await readGguf(output);
    for (const name of ["token_embd.weight", "blk.1.ffn_gate_exps.weight", "blk.0.ffn_down_exps.weight", "output.weight"]) {
      const tensor = file.tensors.find((t) => t.name === name)!;
      const expected = quantize(tensor.type, synthesizeTensor(SMALL, name), tensor.shape[0]);
      const actual = await readTensorBytes(output, tensor);
      expect(Buffer.from(actual).equals(Buffer.from(expected)), name).toBe(true);
    }
  });

  it("onProgress reports every tensor, with bytesDone rising to bytesTotal", async () => {
    const seen: { tensorIndex: number; bytesDone: number; bytesTotal: number; tensorCount: number }[] = [];
    await quantizeModel(input, join(dir, "progress.gguf"), { type: "q8_0", threads: 1, onProgress: (p) => seen.push(p) });
    const file = await readGguf(input);
    expect(new Set(seen.map((p) => p.tensorIndex)).size).toBe(file.tensors.length);
    for (let i = 1; i < seen.length; i++) expect(seen[i].bytesDone).toBeGreaterThan(seen[i - 1].bytesDone);
    expect(seen.at(-1)!.bytesDone).toBe(file.tensors.reduce((sum, t) => sum + t.byteLength, 0));
    expect(seen.at(-1)!.bytesTotal).toBe(seen.at(-1)!.bytesDone);
  });

  it("re-quantizing an already quantized file emits a warning; quantizing F32 does not", async () => {
    const warnings: string[] = [];
    await quantizeModel(input, join(dir, "q8.gguf"), { type: "q8_0", threads: 2, onWarning: (m) => warnings.push(m) });
    expect(warnings).toEqual([]);
    const result = await quantizeModel(join(dir, "q8.gguf"), join(dir, "q8-to-q4.gguf"), { type: "q4_0", threads: 2, onWarning: (m) => warnings.push(m) });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/re-quantizing .* already quantized/);
    expect(result.warnings).toEqual(warnings);
  });
});

describe("26 quantize: bad input fails before any work", () => {
  it("an unknown type is a QuantizeError QUANTIZE_UNKNOWN_TYPE naming the value and listing every valid type", async () => {
    let progressCalls = 0;
    const error = await rejection(quantizeModel(input, join(dir, "bad-type.gguf"), { type: "q4_k_x" as never, onProgress: () => progressCalls++ }));
    expect(error).toBeInstanceOf(QuantizeError);
    expect(error.code).toBe("QUANTIZE_UNKNOWN_TYPE");
    expect(error.message).toContain('options.type');
    expect(error.message).toContain('"q4_k_x"');
    for (const type of QUANTIZE_TYPES) expect(error.message).toContain(type);
    expect(progressCalls).toBe(0);
    expect(await leftovers("bad-type")).toEqual([]);
  });

  it("output equal to the input (same path, another spelling, a hard link) is QUANTIZE_SAME_PATH and leaves the input as it was", async () => {
    const copy = join(dir, "same.gguf");
    await writeFile(copy, new Uint8Array(0));
    await rm(copy);
    await quantizeModel(input, copy, { type: "q8_0", threads: 2 });
    const before = await readGguf(copy);
    await link(copy, join(dir, "same-link.gguf"));
    for (const output of [copy, join(dir, ".", "same.gguf"), join(dir, "same-link.gguf")]) {
      const error = await rejection(quantizeModel(copy, output, { type: "q4_0" }));
      expect(error, output).toBeInstanceOf(QuantizeError);
      expect(error.code).toBe("QUANTIZE_SAME_PATH");
      expect(error.message).toContain("output");
    }
    expect(await readGguf(copy)).toEqual(before);
  });

  it("an output folder that is missing, or a path that is a folder or under a file, is QUANTIZE_OUTPUT_UNWRITABLE", async () => {
    await writeFile(join(dir, "plain-file"), "x");
    for (const output of [join(dir, "no-such-folder", "out.gguf"), dir, join(dir, "plain-file", "out.gguf")]) {
      const error = await rejection(quantizeModel(input, output, { type: "q4_0" }));
      expect(error, output).toBeInstanceOf(QuantizeError);
      expect(error.code).toBe("QUANTIZE_OUTPUT_UNWRITABLE");
      expect(error.message).toContain(JSON.stringify(output));
    }
    expect(existsSync(join(dir, "no-such-folder"))).toBe(false);
  });

  it("bad arguments are TypeError/RangeError naming them", async () => {
    await expect(quantizeModel("", join(dir, "x.gguf"), { type: "q4_0" })).rejects.toThrow(/input/);
    await expect(quantizeModel(input, 42 as never, { type: "q4_0" })).rejects.toThrow(TypeError);
    await expect(quantizeModel(input, join(dir, "x.gguf"), undefined as never)).rejects.toThrow(/options/);
    await expect(quantizeModel(input, join(dir, "x.gguf"), { type: "q4_0", threads: 0 })).rejects.toThrow(RangeError);
    await expect(quantizeModel(input, join(dir, "x.gguf"), { type: "q4_0", onProgress: 1 as never })).rejects.toThrow(/options\.onProgress/);
    expect(await leftovers("x.gguf")).toEqual([]);
  });
});

describe("26 quantize: an interrupted run leaves nothing at the output path", () => {
  it("an abort during the run rejects with AbortError and leaves neither the output nor a temporary file", async () => {
    const controller = new AbortController();
    let chunks = 0;
    const error = await rejection(quantizeModel(input, join(dir, "aborted.gguf"), {
      type: "q4_k_m", threads: 2, signal: controller.signal,
      onProgress: () => { if (++chunks === 3) controller.abort(); },
    }));
    expect(error).toBeInstanceOf(AbortError);
    expect(chunks).toBeGreaterThanOrEqual(3);
    expect(await leftovers("aborted")).toEqual([]);
  });

  it("an already aborted signal rejects with AbortError before anything is written", async () => {
    const error = await rejection(quantizeModel(input, join(dir, "pre-aborted.gguf"), { type: "q4_0", signal: AbortSignal.abort() }));
    expect(error).toBeInstanceOf(AbortError);
    expect(await leftovers("pre-aborted")).toEqual([]);
  });
});

describe("26 quantize: `mixtral-native quantize`", () => {
  it("writes the file, prints a summary and exits 0", () => {
    const output = join(dir, "cli.gguf");
    const result = spawnSync(process.execPath, [cli, "quantize", input, output, "--type", "Q4_0", "--threads", "2"], { encoding: "utf8", timeout: 120_000 });
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^wrote .*cli\.gguf: q4_0 \(file type 2\)/);
    expect(existsSync(output)).toBe(true);
  });

  it("an unknown --type exits 1 with one error line listing the valid types", () => {
    const result = spawnSync(process.execPath, [cli, "quantize", input, join(dir, "cli-bad.gguf"), "--type", "q7"], { encoding: "utf8", timeout: 60_000 });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/^error QUANTIZE_UNKNOWN_TYPE: options\.type must be one of f16, bf16, .*q6_k; got "q7"\n$/);
  });

  it("Ctrl-C (SIGINT) mid-run exits 130 and leaves neither the output nor a temporary file", async () => {
    const big = await cachedTestModel({ ...SMALL, nEmbd: 512, nFf: 512 });
    const output = join(dir, "cli-sigint.gguf");
    const child = spawn(process.execPath, [cli, "quantize", big, output, "--type", "q2_k", "--threads", "1"], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (data: Buffer) => { stderr += data.toString(); });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    // the temporary file appearing means the run is under way
    while ((await leftovers("cli-sigint")).length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    child.kill("SIGINT");
    expect(await exited).toBe(130);
    expect(stderr).toContain("interrupted");
    expect(await leftovers("cli-sigint")).toEqual([]);
  });
});
