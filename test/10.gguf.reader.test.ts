import { execFileSync } from "node:child_process";
import { mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";

import { beforeAll, describe, expect, it } from "vitest";

import { ArgumentTypeError, GgufError, GgufValueType, GgmlType, GgufWriter, inspectModel, Mixtral, readGguf, type GgufFileInfo } from "../lib/index.js";
import { everyTypeSpec } from "./helpers/every-type.js";
import { concatBytes, fieldBytes, ggufLayout, rawGguf } from "./helpers/gguf-layout.js";
import { writeSpec } from "./helpers/tiny-model.js";

const dir = join(import.meta.dirname, "..", ".cache", "test-10-reader");

/** What the reader must return for a value the writer wrote: FLOAT32 values come back rounded to float32. */
function expectedValue(type: GgufValueType, value: unknown): unknown {
  return type === GgufValueType.FLOAT32 ? Math.fround(value as number) : value;
}

async function roundTrip(alignment: number): Promise<{ info: GgufFileInfo; bytes: Uint8Array; spec: ReturnType<typeof everyTypeSpec> }> {
  const spec = everyTypeSpec(alignment);
  const path = join(dir, `every-type-${alignment}.gguf`);
  await writeSpec(spec, path);
  return { info: await readGguf(path, { verifyTensorData: true }), bytes: new Uint8Array(await readFile(path)), spec };
}

beforeAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
});

describe("10 gguf reader: what GgufWriter writes, readGguf reads back exactly", () => {
  it("every metadata value type comes back in file order with its type, element type and exact value", async () => {
    const { info, spec } = await roundTrip(32);
    expect([...info.metadata.keys()]).toEqual(spec.metadata.map((kv) => kv.key));
    for (const kv of spec.metadata) {
      const entry = info.metadata.get(kv.key)!;
      expect(entry.type, kv.key).toBe(kv.type);
      expect(entry.elementType, kv.key).toBe(kv.elementType);
      if (kv.type === GgufValueType.ARRAY && ArrayBuffer.isView(kv.value)) {
        expect(entry.value.constructor, kv.key).toBe(kv.value.constructor);  // numeric arrays as the matching typed array
      }
      expect(entry.value, kv.key).toStrictEqual(expectedValue(kv.type, kv.value));
    }
  });

  it("64-bit extremes, -0, subnormals, empty strings and UTF-8 keys survive exactly", async () => {
    const { info } = await roundTrip(32);
    expect(info.metadata.get("test.u64.max")!.value).toBe(18446744073709551615n);
    expect(info.metadata.get("test.i64.min")!.value).toBe(-9223372036854775808n);
    expect(info.metadata.get("test.string.empty")!.value).toBe("");
    expect(info.metadata.get("général.clé.日本語")!.value).toBe("utf-8 key");
    expect(info.metadata.get("test.string")!.value).toBe("héllo wörld ☃ 日本語 🎉");
    const f32 = info.metadata.get("test.array.f32")!.value as Float32Array;
    expect(Object.is(f32[1], -0)).toBe(true);
    expect(f32[3]).toBe(Math.fround(1e-45));
    expect((info.metadata.get("test.array.f64")!.value as Float64Array)[2]).toBe(5e-324);
    expect(info.metadata.get("test.array.empty")!.value).toStrictEqual(new Uint32Array(0));
    expect(info.metadata.get("test.array.string.empty")!.value).toStrictEqual([]);
  });

  it("tensor descriptors give name, type, ggml-order shape, absolute offset and byte length of the written bytes", async () => {
    const { info, bytes, spec } = await roundTrip(32);
    expect(info.tensors.map((t) => t.name)).toEqual(spec.tensors.map((t) => t.name));
    for (const [i, tensor] of info.tensors.entries()) {
      const written = spec.tensors[i];
      expect(tensor.type).toBe(written.type);
      expect(tensor.shape).toEqual(written.shape);
      expect(tensor.byteLength).toBe(written.data.byteLength);
      expect(tensor.offset % 32).toBe(0);
      expect(bytes.subarray(tensor.offset, tensor.offset + tensor.byteLength)).toStrictEqual(written.data);
    }
  });

  it("version, default alignment, data offset and file size match the file's layout", async () => {
    const { info, bytes } = await roundTrip(32);
    const layout = ggufLayout(bytes);
    expect(info.version).toBe(3);
    expect(info.alignment).toBe(32);
    expect(info.metadata.has("general.alignment")).toBe(false);
    expect(info.dataOffset).toBe(layout.dataOffset);
    expect(info.dataOffset).toBeGreaterThanOrEqual(layout.infosEnd);
    expect(info.dataOffset - layout.infosEnd).toBeLessThan(32);
    expect(info.fileSize).toBe(bytes.length);
  });

  it.each([8, 64, 4096])("general.alignment %i places the data section and every tensor on that boundary", async (alignment) => {
    const { info, bytes, spec } = await roundTrip(alignment);
    expect(info.alignment).toBe(alignment);
    expect(info.metadata.get("general.alignment")).toEqual({ type: GgufValueType.UINT32, value: alignment });
    expect(info.dataOffset % alignment).toBe(0);
    for (const [i, tensor] of info.tensors.entries()) {
      expect(tensor.offset % alignment, tensor.name).toBe(0);
      expect(bytes.subarray(tensor.offset, tensor.offset + tensor.byteLength)).toStrictEqual(spec.tensors[i].data);
    }
  });

  it("a file with no metadata and no tensors reads as empty", async () => {
    const path = join(dir, "empty.gguf");
    await new GgufWriter().write(path);
    const info = await readGguf(path);
    expect(info).toMatchObject({ version: 3, alignment: 32, fileSize: 32, tensors: [] });
    expect(info.metadata.size).toBe(0);
  });

  it("GGUF version 2 files (same layout as 3) are read", async () => {
    const bytes = rawGguf([{ key: "general.name", type: GgufValueType.STRING, value: fieldBytes(["str", "v2"]) }]);
    new DataView(bytes.buffer).setUint32(4, 2, true);
    const path = join(dir, "v2.gguf");
    await writeFile(path, bytes);
    const info = await readGguf(path);
    expect(info.version).toBe(2);
    expect(info.metadata.get("general.name")!.value).toBe("v2");
  });

  it("arrays of arrays (which GgufWriter does not write) read as nested arrays of typed arrays and strings", async () => {
    const T = GgufValueType;
    const path = join(dir, "nested.gguf");
    await writeFile(path, rawGguf([
      { key: "test.nested.u16", type: T.ARRAY, value: concatBytes(
        fieldBytes(["u32", T.ARRAY], ["u64", 2]),
        fieldBytes(["u32", T.UINT16], ["u64", 2]), Uint8Array.of(1, 0, 0xff, 0xff),
        fieldBytes(["u32", T.UINT16], ["u64", 0]),
      ) },
      { key: "test.nested.string", type: T.ARRAY, value: concatBytes(
        fieldBytes(["u32", T.ARRAY], ["u64", 1], ["u32", T.ARRAY], ["u64", 1], ["u32", T.STRING], ["u64", 2], ["str", "a"], ["str", "bc"]),
      ) },
    ]));
    const info = await readGguf(path);
    expect(info.metadata.get("test.nested.u16")).toStrictEqual({
      type: T.ARRAY, elementType: T.ARRAY, value: [Uint16Array.of(1, 65535), new Uint16Array(0)],
    });
    expect(info.metadata.get("test.nested.string")!.value).toStrictEqual([[["a", "bc"]]]);
  });

  it("verifyTensorData accepts finite data and changes nothing in the result", async () => {
    const spec = everyTypeSpec();
    const path = join(dir, "verify.gguf");
    await writeSpec(spec, path);
    const [plain, verified] = await Promise.all([readGguf(path), readGguf(path, { verifyTensorData: true })]);
    expect(verified).toStrictEqual(plain);
  });

  it("a missing file and a directory reject with GGUF_OPEN_FAILED naming the path", async () => {
    const missing = join(dir, "does-not-exist.gguf");
    await expect(readGguf(missing)).rejects.toMatchObject({ code: "GGUF_OPEN_FAILED", message: expect.stringContaining(missing) });
    await expect(readGguf(missing)).rejects.toBeInstanceOf(GgufError);
    await expect(readGguf(dir)).rejects.toMatchObject({ code: "GGUF_OPEN_FAILED", message: expect.stringContaining("not a regular file") });
  });

  it.runIf(process.platform !== "win32")("a FIFO is refused at once as not a regular file (GGUF_OPEN_FAILED), never waiting for a writer", async () => {
    const fifo = join(dir, "fifo.gguf");
    execFileSync("mkfifo", [fifo]);
    for (const open of [() => readGguf(fifo), () => inspectModel(fifo), () => Mixtral.load(fifo), () => Mixtral.load(fifo, { weights: "copied" })]) {
      await expect(open()).rejects.toMatchObject({ code: "GGUF_OPEN_FAILED", message: `${fifo}: not a regular file` });
    }
  }, 10_000);

  it("GgufWriter.write into a missing folder or onto a folder rejects with GGUF_WRITE_FAILED naming the path, and leaves no temporary file", async () => {
    const writer = new GgufWriter().set("general.name", GgufValueType.STRING, "x");
    const missing = join(dir, "no-such-folder", "out.gguf");
    const onFolder = join(dir, "a-folder");
    await mkdir(onFolder);
    for (const [path, cause] of [[missing, "ENOENT"], [onFolder, "EISDIR"]]) {
      const error = await writer.write(path).catch((e: unknown) => e);
      expect(error, path).toBeInstanceOf(GgufError);
      expect(error, path).toMatchObject({ code: "GGUF_WRITE_FAILED", cause: { code: cause } });
      expect((error as Error).message, path).toContain(`cannot write ${JSON.stringify(path)}`);
    }
    expect((await readdir(dir)).filter((name) => name.endsWith(".tmp"))).toEqual([]);
  });

  it("GgufWriter.write checks its path and options before creating any file", async () => {
    const writer = new GgufWriter();
    const before = await readdir(process.cwd());
    for (const [call, code, message] of [
      [() => writer.write(42 as unknown as string), "ERR_INVALID_ARG_TYPE", /^path must be a non-empty string; got 42/],
      [() => writer.write(""), "ERR_INVALID_ARG_TYPE", /^path must be a non-empty string/],
      [() => writer.write(join(dir, "x.gguf"), null as unknown as {}), "ERR_INVALID_ARG_TYPE", /^options must be an object; got null/],
      [() => writer.write(join(dir, "x.gguf"), { signal: {} as AbortSignal }), "ERR_INVALID_ARG_TYPE", /^options\.signal must be an AbortSignal/],
      [() => writer.write(join(dir, "x.gguf"), { onProgres: () => {} } as {}), "ERR_INVALID_ARG_VALUE", /unknown option "onProgres" \(did you mean "onProgress"\?\)/],
    ] as const) {
      const error = await call().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ArgumentTypeError);
      expect((error as ArgumentTypeError).code).toBe(code);
      expect((error as Error).message).toMatch(message);
    }
    expect(await readdir(process.cwd())).toEqual(before);
    expect((await readdir(dir)).filter((name) => name.startsWith("x.gguf"))).toEqual([]);
  });

  it("bad arguments throw TypeError naming the argument before any file is touched", async () => {
    await expect(readGguf("")).rejects.toThrow(new ArgumentTypeError('path must be a non-empty string; got ""'));
    await expect(readGguf(42 as unknown as string)).rejects.toThrow(/path must be a non-empty string; got 42/);
    await expect(readGguf("a\0b")).rejects.toThrow(/path must not contain NUL/);
    await expect(readGguf("x.gguf", null as unknown as {})).rejects.toThrow(/options must be an object; got null/);
    await expect(readGguf("x.gguf", { verifyTensorData: "yes" as unknown as boolean })).rejects.toThrow(
      /options.verifyTensorData must be a boolean; got "yes"/,
    );
    await expect(readGguf("")).rejects.toBeInstanceOf(TypeError);
    for (const read of [readGguf, inspectModel]) {
      await expect(read("x.gguf", { verifyTensorDta: true } as {})).rejects.toMatchObject({
        code: "ERR_INVALID_ARG_VALUE",
        message: expect.stringMatching(/^options has an unknown option "verifyTensorDta" \(did you mean "verifyTensorData"\?\)/),
      });
    }
  });

  it("tensor data stays in the file: reading a 64 MiB tensor returns descriptors, not its bytes", async () => {
    const path = join(dir, "large.gguf");
    const writer = new GgufWriter();
    writer.addTensor("big", GgmlType.F32, [4096, 4096], () => new Uint8Array(4096 * 4096 * 4));
    await writer.write(path);
    const info = await readGguf(path);
    expect(info.tensors).toEqual([{ name: "big", type: GgmlType.F32, shape: [4096, 4096], offset: info.dataOffset, byteLength: 67108864 }]);
    expect(info.fileSize).toBe((await stat(path)).size);
    await rm(path);
  });
});
