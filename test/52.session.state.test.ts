import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { MixtralError, StateError } from "../lib/errors.js";
import { Mixtral } from "../lib/model.js";
import type { Session } from "../lib/session.js";
import { cachedTestModel } from "../lib/testing/test-model.js";

const PROMPT = "In the beginning God created the heaven and the earth.";
const HEADER_BYTES = 88;

let model: Mixtral;
let prompt: Int32Array;

beforeAll(async () => {
  model = await Mixtral.load(await cachedTestModel({}), { threads: 1 });
  prompt = model.tokenizer.encode(PROMPT);
});

afterAll(async () => {
  await model?.dispose();
});

/** The format's checksum (native/model/state.cc), written again from its description: FNV-1a over 8-byte words. */
function checksum(bytes: Uint8Array): bigint {
  const M = (1n << 64n) - 1n;
  const PRIME = 0x100000001b3n;
  let h = 0xcbf29ce484222325n;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let i = 0;
  for (; i + 8 <= bytes.length; i += 8) {
    h = ((h ^ view.getBigUint64(i, true)) * PRIME) & M;
    h ^= h >> 29n;
  }
  for (; i < bytes.length; i++) h = ((h ^ BigInt(bytes[i])) * PRIME) & M;
  return h;
}

/** A copy of `state` with `edit` applied and the checksum made valid again: only the structural checks can object. */
function forged(state: Uint8Array, edit: (view: DataView) => void): Uint8Array {
  const copy = state.slice();
  const view = new DataView(copy.buffer);
  edit(view);
  view.setBigUint64(copy.length - 8, checksum(copy.subarray(0, copy.length - 8)), true);
  return copy;
}

async function greedy(session: Session, count: number): Promise<number[]> {
  const out: number[] = [];
  for await (const { token } of session.generate([], { temperature: 0, maxTokens: count, logitBias: new Map([[2, -Infinity]]) })) out.push(token);
  return out;
}

function stateError(run: () => void): StateError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(StateError);
    return error as StateError;
  }
  throw new Error("expected a StateError");
}

describe("52 session state: save and load", () => {
  it("a loaded state continues exactly as the original session: same tokens, cache and logits", async () => {
    using original = model.createSession();
    await original.eval(prompt);
    const state = original.saveState();
    using copy = model.createSession();
    copy.loadState(state);
    expect(copy.tokens).toEqual(original.tokens);
    expect(copy.position).toBe(prompt.length);
    // The logits came with the state: the first token is sampled without evaluating anything.
    using probe = model.createSession();
    probe.loadState(state);
    await greedy(probe, 1);
    expect(probe.routing().layers.every((l) => l.counts.every((c) => c === 0))).toBe(true);
    expect(await greedy(copy, 8)).toEqual(await greedy(original, 8));
  });

  it("the checksum helper here is the format's: an untouched state re-signed by it still loads", async () => {
    using session = model.createSession();
    await session.eval(prompt);
    const state = session.saveState();
    expect(checksum(state.subarray(0, state.length - 8))).toBe(new DataView(state.buffer).getBigUint64(state.length - 8, true));
    using other = model.createSession();
    other.loadState(forged(state, () => {}));
    expect(other.position).toBe(prompt.length);
  });

  it("the size is the documented layout: header, tokens, logits, K and V rows per layer, checksum", async () => {
    using session = model.createSession();
    await session.eval(prompt);
    const { nLayers, nHeadsKv, headDim, nVocab } = model.info;
    const n = prompt.length;
    expect(session.saveState().length).toBe(HEADER_BYTES + 4 * n + 4 * nVocab + nLayers * 2 * nHeadsKv * n * headDim * 2 + 8);
    using f32 = model.createSession({ kvCacheType: "f32" });
    await f32.eval(prompt);
    f32.rewind(1); // the logits are stale now, so they are left out
    expect(f32.saveState().length).toBe(HEADER_BYTES + 4 * (n - 1) + nLayers * 2 * nHeadsKv * (n - 1) * headDim * 4 + 8);
  });

  it("a sliding-window session's rolling cache round-trips, also into a session with other slot counts", async () => {
    const windowed = await Mixtral.load(await cachedTestModel({}), { threads: 1, slidingWindow: 8 });
    try {
      using original = windowed.createSession({ batchSize: 4 }); // 8 + 4 - 1 = 11 slots: the ring wraps
      await original.eval(prompt);
      const state = original.saveState();
      using same = windowed.createSession({ batchSize: 4 });
      same.loadState(state);
      using wider = windowed.createSession({ batchSize: 16 }); // 23 slots
      wider.loadState(state);
      using narrower = windowed.createSession({ batchSize: 1 }); // 8 slots: keeps the newest 8 rows
      narrower.loadState(state);
      const expected = await greedy(original, 6);
      expect(await greedy(same, 6)).toEqual(expected);
      expect(await greedy(wider, 6)).toEqual(expected);
      expect(await greedy(narrower, 6)).toEqual(expected);
      using full = model.createSession();
      expect(stateError(() => full.loadState(state)).code).toBe("STATE_SESSION_MISMATCH");
    } finally {
      await windowed.dispose();
    }
  });

  it("an empty session's state loads into another session and empties it", async () => {
    using empty = model.createSession();
    const state = empty.saveState();
    using session = model.createSession();
    await session.eval(prompt);
    session.loadState(state);
    expect(session.position).toBe(0);
    await session.eval(prompt); // usable afterwards
  });
});

describe("52 session state: refusals", () => {
  let state: Uint8Array;
  let target: Session;

  beforeAll(async () => {
    const source = model.createSession();
    await source.eval(prompt);
    state = source.saveState();
    source.dispose();
    target = model.createSession();
    await target.eval([1, 2, 3]);
  });

  afterAll(() => target?.dispose());

  function expectRefused(bytes: Uint8Array, code: string): StateError {
    const error = stateError(() => target.loadState(bytes));
    expect(error.code).toBe(code);
    expect(target.tokens).toEqual(Int32Array.from([1, 2, 3])); // nothing changed
    return error;
  }

  it("a corrupted, truncated or extended buffer is STATE_CORRUPT and leaves the session as it was", () => {
    for (const at of [20, HEADER_BYTES + 5, Math.floor(state.length / 2), state.length - 1]) {
      const flipped = state.slice();
      flipped[at] ^= 0x10;
      expectRefused(flipped, "STATE_CORRUPT");
    }
    expectRefused(state.subarray(0, state.length - 1), "STATE_CORRUPT");
    expectRefused(state.subarray(0, Math.floor(state.length / 2)), "STATE_CORRUPT");
    expectRefused(state.subarray(0, 40), "STATE_CORRUPT");
    expectRefused(new Uint8Array(0), "STATE_CORRUPT");
    expectRefused(Uint8Array.from([...state, 0]), "STATE_CORRUPT");
    expectRefused(Uint8Array.from({ length: 4096 }, (_, i) => (i * 2654435761) >>> 24), "STATE_CORRUPT");
  });

  it("a buffer whose checksum is right but whose counts lie is still STATE_CORRUPT", () => {
    expectRefused(forged(state, (v) => v.setBigUint64(72, v.getBigUint64(72, true) + 1n, true)), "STATE_CORRUPT");
    expectRefused(forged(state, (v) => v.setBigUint64(72, 1n << 62n, true)), "STATE_CORRUPT");
    expectRefused(forged(state, (v) => v.setBigUint64(80, 1n, true)), "STATE_CORRUPT");
    expectRefused(forged(state, (v) => v.setUint32(HEADER_BYTES + 4, 40000, true)), "STATE_CORRUPT"); // a token id past the vocabulary
    expectRefused(forged(state, (v) => v.setUint32(12, 6, true)), "STATE_CORRUPT"); // unknown flags
    expectRefused(forged(state, (v) => v.setUint32(64, 7, true)), "STATE_CORRUPT"); // unknown KV type
  });

  it("any value in any header byte, checksum re-signed, either loads a usable state or throws StateError", async () => {
    using small = model.createSession();
    await small.eval([1, 500, 600, 700]);
    small.rewind(1); // stale logits: the state has none, so it is small
    const compact = small.saveState();
    using scratch = model.createSession({ contextSize: 16 });
    let refused = 0;
    for (let at = 0; at < HEADER_BYTES; at++) {
      for (const value of [0x00, 0xff, compact[at] ^ 0x01]) {
        const bytes = forged(compact, (v) => v.setUint8(at, value));
        try {
          scratch.loadState(bytes);
          expect(scratch.position).toBeLessThanOrEqual(16);
          await scratch.eval([42]); // whatever loaded is a working cache
        } catch (error) {
          expect(error).toBeInstanceOf(StateError);
          refused++;
        }
      }
    }
    expect(refused).toBeGreaterThan(200);
  });

  it("another format version is STATE_UNSUPPORTED_VERSION", () => {
    expectRefused(forged(state, (v) => v.setUint32(8, 2, true)), "STATE_UNSUPPORTED_VERSION");
  });

  it("a state from a model of another shape is STATE_MODEL_MISMATCH naming the difference", () => {
    expect(expectRefused(forged(state, (v) => v.setUint32(24, 3, true)), "STATE_MODEL_MISMATCH").message).toMatch(/nLayers is 3/);
  });

  it("a state from another model of the same shape (other weights) is STATE_MODEL_MISMATCH", async () => {
    const other = await Mixtral.load(await cachedTestModel({ seed: 2 }), { threads: 1 });
    try {
      using session = other.createSession();
      await session.eval(prompt);
      const foreign = session.saveState();
      expect(foreign.length).toBe(state.length);
      expect(expectRefused(foreign, "STATE_MODEL_MISMATCH").message).toMatch(/different weights/);
    } finally {
      await other.dispose();
    }
  });

  it("a session with another KV type or too small a context is STATE_SESSION_MISMATCH", () => {
    using f32 = model.createSession({ kvCacheType: "f32" });
    expect(stateError(() => f32.loadState(state)).code).toBe("STATE_SESSION_MISMATCH");
    using small = model.createSession({ contextSize: prompt.length - 1 });
    expect(stateError(() => small.loadState(state)).message).toMatch(/context size/);
    expect(small.position).toBe(0);
  });

  it("bad arguments and a busy session are refused before any native work", async () => {
    expect(() => target.loadState([1, 2, 3] as never)).toThrow(TypeError);
    using session = model.createSession();
    const pending = session.eval(prompt);
    expect(() => session.saveState()).toThrow(expect.objectContaining({ code: "SESSION_BUSY" }));
    expect(() => session.loadState(state)).toThrow(MixtralError);
    await pending;
  });
});
