// Bad input (issue 4, item 7): every public entry point checks its arguments and throws a TypeError or RangeError
// with Node's code, naming the argument, synchronously, so nothing reaches the native side; files it cannot run give
// GgufError.
import { readFile, writeFile, mkdir } from "node:fs/promises";
import { join } from "node:path";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { ArgumentRangeError, ArgumentTypeError, ContextOverflowError, GgufError, Mixtral, MixtralError, type Session } from "../lib/index.js";
import { cachedTestModel } from "../lib/testing/test-model.js";
import { describeValue } from "../lib/validate.js";

const SHAPE = { nEmbd: 128, nFf: 256, nLayers: 2, nHeads: 4, nHeadsKv: 2, nExperts: 8, nExpertsUsed: 2 } as const;
const CONTEXT_LENGTH = 2048; // the test model's llama.context_length
const dir = join(import.meta.dirname, "..", ".cache", "test-46");

let path: string;
let model: Mixtral;
let session: Session;

beforeAll(async () => {
  await mkdir(dir, { recursive: true });
  path = await cachedTestModel(SHAPE);
  model = await Mixtral.load(path, { threads: 2 });
  session = model.createSession({ contextSize: 16 });
});

afterAll(() => model.dispose());

type ErrorClass = typeof TypeError | typeof RangeError;

/** What `call` throws (undefined if it returns). */
function thrownBy(call: () => unknown): unknown {
  try {
    call();
  } catch (error) {
    return error;
  }
  return undefined;
}

/** The codes an argument error of each class may carry (Node's own). */
const ARGUMENT_CODES = new Map<ErrorClass, string[]>([
  [TypeError, ["ERR_INVALID_ARG_TYPE", "ERR_INVALID_ARG_VALUE"]],
  [RangeError, ["ERR_OUT_OF_RANGE", "ERR_INVALID_ARG_VALUE"]],
]);

/** `thrown` is a `type` with one of its argument codes and a message matching `message`. */
function expectArgumentError(thrown: unknown, type: ErrorClass, message: RegExp): void {
  expect(thrown).toBeInstanceOf(type);
  expect((thrown as Error).message).toMatch(message);
  expect(ARGUMENT_CODES.get(type), (thrown as Error).message).toContain((thrown as { code?: unknown }).code);
}

/** Throws `type` at once (no promise), with a message matching `message`, and leaves the session idle and empty. */
function expectSyncError(call: () => unknown, type: ErrorClass, message: RegExp): void {
  expectArgumentError(thrownBy(call), type, message);
  expect(session.position).toBe(0);
  expect(() => session.rewind(0)).not.toThrow(); // throws SESSION_BUSY if anything had been queued
}

describe("46 engine: bad input is refused before any native work", () => {
  it.each<[string, unknown, ErrorClass, RegExp]>([
    ["an empty list", [], RangeError, /^tokens must not be empty/],
    ["an id equal to nVocab", [1, 32000], RangeError, /^tokens\[1\] is 32000, not a token id in \[0, 32000\)/],
    ["a negative id", [-1], RangeError, /^tokens\[0\] is -1/],
    ["a non-integer id", [1, 2.5], RangeError, /^tokens\[1\] is 2\.5/],
    ["NaN", [NaN], RangeError, /^tokens\[0\] is NaN/],
    ["Infinity", [Infinity], RangeError, /^tokens\[0\] is Infinity/],
    ["a string id", [1, "2"], RangeError, /^tokens\[1\] is "2"/],
    ["a string", "In the beginning", TypeError, /^tokens must be an array or typed array of token ids/],
    ["null", null, TypeError, /^tokens must be an array/],
  ])("eval with %s throws at once, naming tokens", (_label, tokens, type, message) => {
    expectSyncError(() => session.eval(tokens as number[]), type, message);
  });

  it("eval with an unknown or mistyped option throws TypeError with a did-you-mean hint", () => {
    expectSyncError(() => session.eval([1], { sigal: AbortSignal.timeout(1000) } as never), TypeError, /unknown option "sigal" \(did you mean "signal"\?\)/);
    expectSyncError(() => session.eval([1], { signal: {} as AbortSignal }), TypeError, /^options\.signal must be an AbortSignal/);
  });

  it.each<[string, object, ErrorClass, RegExp]>([
    ["contextSize 0", { contextSize: 0 }, RangeError, /^options\.contextSize must be between 1 and 2048; got 0/],
    ["contextSize -5", { contextSize: -5 }, RangeError, /^options\.contextSize must be between 1 and 2048; got -5/],
    ["contextSize above the model's context", { contextSize: CONTEXT_LENGTH + 1 }, RangeError, /^options\.contextSize must be between 1 and 2048; got 2049/],
    ["contextSize NaN", { contextSize: NaN }, RangeError, /^options\.contextSize must be an integer; got NaN/],
    ["contextSize 1.5", { contextSize: 1.5 }, RangeError, /^options\.contextSize must be an integer; got 1\.5/],
    ["contextSize as a string", { contextSize: "64" }, TypeError, /^options\.contextSize must be an integer; got "64"/],
    ["batchSize 0", { batchSize: 0 }, RangeError, /^options\.batchSize must be between 1/],
    ["kvCacheType q8", { kvCacheType: "q8" }, RangeError, /^options\.kvCacheType must be "f16" or "f32"/],
    ["a misspelt option", { contextsize: 64 }, TypeError, /unknown option "contextsize" \(did you mean "contextSize"\?\)/],
  ])("createSession with %s throws naming the option", (_label, options, type, message) => {
    expectSyncError(() => model.createSession(options), type, message);
  });

  it.each<[string, object, ErrorClass, RegExp]>([
    ["maxTokens -1", { maxTokens: -1 }, RangeError, /^options\.maxTokens must be between 0/],
    ["maxTokens NaN", { maxTokens: NaN }, RangeError, /^options\.maxTokens must be an integer; got NaN/],
    ["temperature NaN", { temperature: NaN }, RangeError, /^options\.temperature must be a finite number; got NaN/],
    ["temperature -0.5", { temperature: -0.5 }, RangeError, /^options\.temperature must be ≥ 0/],
    ["topK -1", { topK: -1 }, RangeError, /^options\.topK must be an integer ≥ 0/],
    ["topP NaN", { topP: NaN }, RangeError, /^options\.topP must be a finite number/],
    ["topP -0.1", { topP: -0.1 }, RangeError, /^options\.topP must be in \[0, 1\]/],
    ["minP -1", { minP: -1 }, RangeError, /^options\.minP must be in \[0, 1\]/],
    ["repeatPenalty -1", { repeatPenalty: -1 }, RangeError, /^options\.repeatPenalty must be > 0/],
    ["repeatPenalty NaN", { repeatPenalty: NaN }, RangeError, /^options\.repeatPenalty must be a finite number/],
    ["seed -1", { seed: -1 }, RangeError, /^options\.seed must be an integer/],
    ["a misspelt temperature", { temprature: 0 }, TypeError, /unknown option "temprature" \(did you mean "temperature"\?\)/],
    ["a misspelt maxTokens", { maxToken: 8 }, TypeError, /unknown option "maxToken" \(did you mean "maxTokens"\?\)/],
    ["stop as a number", { stop: 5 }, TypeError, /^options\.stop must be a string or an array of strings/],
    ["a stop list with a number", { stop: ["ok", 1] }, TypeError, /^options\.stop\[1\] must be a string/],
  ])("generate with %s throws naming the option", (_label, options, type, message) => {
    expectSyncError(() => session.generate("In the beginning", options), type, message);
  });

  it.each<[string, unknown, ErrorClass, RegExp]>([
    ["an id outside the vocabulary", [1, 40000], RangeError, /^prompt\[1\] is 40000/],
    ["a non-integer id", [1.5], RangeError, /^prompt\[0\] is 1\.5/],
    ["a number", 7, TypeError, /^prompt must be an array or typed array of token ids/],
    ["nothing, on an empty session", [], RangeError, /^prompt is empty and the session holds no tokens/],
  ])("generate with %s as the prompt throws naming the prompt", (_label, prompt, type, message) => {
    expectSyncError(() => session.generate(prompt as number[]), type, message);
  });

  it("rewind with a negative, fractional or too large count throws RangeError naming n", () => {
    expectSyncError(() => session.rewind(-1), RangeError, /^n must be between 0 and 0; got -1/);
    expectSyncError(() => session.rewind(0.5), RangeError, /^n must be an integer; got 0\.5/);
    expectSyncError(() => session.rewind(1), RangeError, /^n must be between 0 and 0; got 1/);
  });

  it("a prompt longer than the context gives ContextOverflowError before it reaches the native side", async () => {
    const long = Array.from({ length: 17 }, (_, i) => 100 + i);
    await expect(session.eval(long)).rejects.toBeInstanceOf(ContextOverflowError);
    await expect(session.generate(long).next()).rejects.toBeInstanceOf(ContextOverflowError);
    expect(session.position).toBe(0);
  });

  it.each<[string, object, ErrorClass, RegExp]>([
    ["threads 0", { threads: 0 }, RangeError, /^options\.threads must be between 1 and 1024; got 0/],
    ["slidingWindow 0", { slidingWindow: 0 }, RangeError, /^options\.slidingWindow must be between 1/],
    ["slidingWindow -3", { slidingWindow: -3 }, RangeError, /^options\.slidingWindow must be between 1/],
    ["expertsPerToken 0", { expertsPerToken: 0 }, RangeError, /^options\.expertsPerToken must be between 1/],
    ["a misspelt option", { thread: 2 }, TypeError, /unknown option "thread" \(did you mean "threads"\?\)/],
    ["onProgress 3", { onProgress: 3 }, TypeError, /^options\.onProgress must be a function/],
    ["weights mmap", { weights: "mmap" }, RangeError, /^options\.weights must be "mapped", "copied" or "repacked"; got "mmap"/],
    ["weights true", { weights: true }, TypeError, /^options\.weights must be "mapped", "copied" or "repacked"; got true/],
  ])("Mixtral.load with %s rejects naming the option", async (_label, options, type, message) => {
    expectArgumentError(await Mixtral.load(path, options as never).catch((e: unknown) => e), type, message);
  });

  it("argument errors carry Node's codes: ERR_INVALID_ARG_TYPE for a wrong type, ERR_INVALID_ARG_VALUE for an unknown option or choice, ERR_OUT_OF_RANGE for a value out of range", async () => {
    const cases: [string, unknown, typeof ArgumentTypeError | typeof ArgumentRangeError, string][] = [
      ["eval of a string", thrownBy(() => session.eval("text" as never)), ArgumentTypeError, "ERR_INVALID_ARG_TYPE"],
      ["a misspelt option", thrownBy(() => model.createSession({ contextsize: 64 } as never)), ArgumentTypeError, "ERR_INVALID_ARG_VALUE"],
      ["an unknown choice", thrownBy(() => model.createSession({ kvCacheType: "q8" as never })), ArgumentRangeError, "ERR_INVALID_ARG_VALUE"],
      ["a negative token id", thrownBy(() => session.eval([-1])), ArgumentRangeError, "ERR_OUT_OF_RANGE"],
      ["decoding an id outside the vocabulary", thrownBy(() => model.tokenizer.decode([40000])), ArgumentRangeError, "ERR_OUT_OF_RANGE"],
      ["threads 0", await Mixtral.load(path, { threads: 0 }).catch((e: unknown) => e), ArgumentRangeError, "ERR_OUT_OF_RANGE"],
      ["more experts than the file has (checked natively)", await Mixtral.load(path, { expertsPerToken: 9 }).catch((e: unknown) => e), ArgumentRangeError, "ERR_OUT_OF_RANGE"],
    ];
    for (const [label, error, type, code] of cases) {
      expect(error, label).toBeInstanceOf(type);
      expect((error as { code: string }).code, label).toBe(code);
      expect((error as Error).name, label).toBe(type === ArgumentTypeError ? "TypeError" : "RangeError");
    }
  });

  it("messages show the bad value by kind: strings quoted and cut at 40 characters, numbers as written, arrays and typed arrays with their length, objects by class", () => {
    expect(describeValue("abc")).toBe('"abc"');
    expect(describeValue("x".repeat(50))).toBe(`"${"x".repeat(40)}…"`);
    expect(describeValue(42)).toBe("42");
    expect(describeValue(10n)).toBe("10n");
    expect(describeValue(null)).toBe("null");
    expect(describeValue(undefined)).toBe("undefined");
    expect(describeValue(() => 0)).toBe("a function");
    expect(describeValue([1, 2, 3])).toBe("an array of length 3");
    expect(describeValue(new Float32Array(8))).toBe("a Float32Array of length 8");
    expect(describeValue(new DataView(new ArrayBuffer(4)))).toBe("a DataView of 4 bytes");
    expect(describeValue({ a: 1 })).toBe("an object");
    expect(describeValue(Object.create(null))).toBe("an object");
    expect(describeValue(new Map())).toBe("a Map");
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    expect(describeValue(proxy)).toBe("an object");
    expect(describeValue(new (class { static get name(): string { throw new Error("boom"); } })())).toBe("an object");
    // The same words from every module's checks.
    expect(() => model.tokenizer.encode({} as never)).toThrow(/^text must be a string; got an object$/);
    expect(() => session.eval(new Map() as never)).toThrow(/got a Map$/);
  });

  it("Mixtral.load with more experts per token than the file has rejects with RangeError", async () => {
    await expect(Mixtral.load(path, { expertsPerToken: 9 })).rejects.toThrow(/^options\.expertsPerToken is 9, but the model has 8 experts/);
    await expect(Mixtral.load(path, { expertsPerToken: 9 })).rejects.toBeInstanceOf(RangeError);
  });

  it("Mixtral.load of a missing, a non-GGUF, a truncated file or a folder rejects with GgufError and its code", async () => {
    const notGguf = join(dir, "not-gguf.gguf");
    const truncated = join(dir, "truncated.gguf");
    await writeFile(notGguf, "not a GGUF file at all\n");
    await writeFile(truncated, (await readFile(path)).subarray(0, 1000));
    for (const [file, code] of [
      [join(dir, "missing.gguf"), "GGUF_OPEN_FAILED"],
      [dir, "GGUF_OPEN_FAILED"],
      [notGguf, "GGUF_BAD_MAGIC"],
      [truncated, "GGUF_BAD_COUNT"],
    ]) {
      const error = await Mixtral.load(file).catch((e: unknown) => e);
      expect(error, file).toBeInstanceOf(GgufError);
      expect((error as GgufError).code, file).toBe(code);
      expect((error as GgufError).message, file).toContain(file);
    }
  });

  it("a file whose sliding window is 2^32 − 1 loads, and createSession reports SESSION_OUT_OF_MEMORY instead of wrapping the slot count", async () => {
    const bytes = await readFile(await cachedTestModel({ ...SHAPE, slidingWindow: 8 }));
    const key = Buffer.from("llama.attention.sliding_window");
    const at = bytes.indexOf(key) + key.length;
    expect(bytes.readUInt32LE(at)).toBe(4); // UINT32
    bytes.writeUInt32LE(0xffffffff, at + 4);
    const hostile = join(dir, "window-2^32-1.gguf");
    await writeFile(hostile, bytes);
    const windowed = await Mixtral.load(hostile, { threads: 1 });
    try {
      expect(windowed.info.slidingWindow).toBe(0xffffffff);
      // In 32 bits, W + batchSize − 1 wrapped to 2 slots and evaluation wrote past them. The true size (2 TB of
      // cache) is more than any machine here: a typed error, not new[] throwing through N-API.
      const error = thrownBy(() => windowed.createSession({ batchSize: 4 }));
      expect(error).toBeInstanceOf(MixtralError);
      expect((error as MixtralError).code).toBe("SESSION_OUT_OF_MEMORY");
      expect((error as MixtralError).message).toMatch(/4294967298 positions/);
    } finally {
      await windowed.dispose();
    }
  });

  it("a slidingWindow option too large for memory gives SESSION_OUT_OF_MEMORY at createSession, not a crash", async () => {
    const huge = await Mixtral.load(path, { threads: 1, slidingWindow: 2 ** 31 - 1 });
    try {
      const error = thrownBy(() => huge.createSession());
      expect(error).toBeInstanceOf(MixtralError);
      expect((error as MixtralError).code).toBe("SESSION_OUT_OF_MEMORY");
    } finally {
      await huge.dispose();
    }
  });
});
