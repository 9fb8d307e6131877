/**
 * Where every field of a well-formed GGUF file sits, so that tests can patch single fields, plus the read checks
 * the native reader makes in order (docs/gguf.md), so that a test can say which code a file cut at any byte gives.
 * Written independently of the C++ reader from the format (REFERENCE.md "GGUF").
 */
import { GGML_TYPE_TRAITS, GgmlType, GgufValueType } from "../../lib/gguf/types.js";

export interface KvLayout {
  key: string;
  /** Offset of the key's u64 length; the key text follows it. */
  at: number;
  typeAt: number;
  valueAt: number;
  type: GgufValueType;
  /** ARRAY only: offsets of the element type, the u64 count and the first element. */
  elementTypeAt?: number;
  countAt?: number;
  elementsAt?: number;
  end: number;
}

export interface TensorLayout {
  name: string;
  /** Offset of the name's u64 length. */
  at: number;
  nDimsAt: number;
  neAt: number[];
  typeAt: number;
  offsetAt: number;
  shape: number[];
  type: GgmlType;
  /** Relative to the data section. */
  offset: number;
  byteLength: number;
  /** Absolute. */
  dataAt: number;
}

/** One bounds check of the reader: reading `bytes` at `at` fails with `code` if the file ends before. */
export interface ReadCheck {
  at: number;
  bytes: number;
  code: "GGUF_TRUNCATED" | "GGUF_BAD_COUNT";
  what: string;
}

export interface GgufLayout {
  kvs: KvLayout[];
  tensors: TensorLayout[];
  /** End of the last tensor info. */
  infosEnd: number;
  dataOffset: number;
  alignment: number;
  /** The reader's bounds checks in the order it makes them. */
  checks: ReadCheck[];
}

const MIN_KV_BYTES = 8 + 1 + 4 + 1;
const MIN_TENSOR_INFO_BYTES = 8 + 1 + 4 + 8 + 4 + 8;
const FIXED_BYTES: Partial<Record<GgufValueType, number>> = {
  [GgufValueType.UINT8]: 1, [GgufValueType.INT8]: 1, [GgufValueType.BOOL]: 1,
  [GgufValueType.UINT16]: 2, [GgufValueType.INT16]: 2,
  [GgufValueType.UINT32]: 4, [GgufValueType.INT32]: 4, [GgufValueType.FLOAT32]: 4,
  [GgufValueType.UINT64]: 8, [GgufValueType.INT64]: 8, [GgufValueType.FLOAT64]: 8,
};

/** Parses a well-formed file (this walker trusts it; it is for fixtures the project wrote itself). */
export function ggufLayout(bytes: Uint8Array): GgufLayout {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const checks: ReadCheck[] = [];
  let at = 0;
  const fixed = (size: number, what: string) => {
    checks.push({ at, bytes: size, code: "GGUF_TRUNCATED", what });
    const start = at;
    at += size;
    return start;
  };
  const u32 = (what: string) => view.getUint32(fixed(4, what), true);
  const u64 = (what: string) => Number(view.getBigUint64(fixed(8, what), true));
  const counted = (count: number, each: number, what: string) => checks.push({ at, bytes: count * each, code: "GGUF_BAD_COUNT", what });
  const string = (what: string) => {
    const length = u64(`${what} length`);
    counted(length, 1, `${what} bytes`);
    const text = new TextDecoder().decode(bytes.subarray(at, at + length));
    at += length;
    return text;
  };

  fixed(4, "magic");
  u32("version");
  const tensorCount = u64("n_tensors");
  const kvCount = u64("n_kv");
  counted(kvCount, MIN_KV_BYTES, "n_kv");

  const kvs: KvLayout[] = [];
  let alignment = 32;
  for (let i = 0; i < kvCount; i++) {
    const kvAt = at;
    const key = string(`key #${i}`);
    const typeAt = at;
    const type = u32(`type of ${key}`) as GgufValueType;
    const kv: KvLayout = { key, at: kvAt, typeAt, valueAt: at, type, end: 0 };
    if (type === GgufValueType.STRING) {
      string(`value of ${key}`);
    } else if (type === GgufValueType.ARRAY) {
      kv.elementTypeAt = at;
      const elementType = u32(`element type of ${key}`) as GgufValueType;
      kv.countAt = at;
      const count = u64(`count of ${key}`);
      const each = elementType === GgufValueType.STRING ? 8 : elementType === GgufValueType.ARRAY ? 12 : FIXED_BYTES[elementType]!;
      counted(count, each, `elements of ${key}`);
      kv.elementsAt = at;
      if (elementType === GgufValueType.ARRAY) throw new Error("the layout walker does not read nested arrays");
      if (elementType === GgufValueType.STRING) for (let j = 0; j < count; j++) string(`element ${j} of ${key}`);
      else at += count * each;
    } else {
      const size = FIXED_BYTES[type]!;
      if (key === "general.alignment") alignment = view.getUint32(at, true);
      fixed(size, `value of ${key}`);
    }
    kv.end = at;
    kvs.push(kv);
  }

  counted(tensorCount, MIN_TENSOR_INFO_BYTES, "n_tensors");
  const tensors: TensorLayout[] = [];
  for (let i = 0; i < tensorCount; i++) {
    const tensorAt = at;
    const name = string(`name of tensor #${i}`);
    const nDimsAt = at;
    const nDims = u32(`n_dims of ${name}`);
    const neAt: number[] = [];
    const shape: number[] = [];
    for (let d = 0; d < nDims; d++) {
      neAt.push(at);
      shape.push(u64(`ne[${d}] of ${name}`));
    }
    const typeAt = at;
    const type = u32(`type of ${name}`) as GgmlType;
    const offsetAt = at;
    const offset = u64(`offset of ${name}`);
    const traits = GGML_TYPE_TRAITS[type];
    const byteLength = (shape.reduce((a, b) => a * b, 1) / traits.blockSize) * traits.blockBytes;
    tensors.push({ name, at: tensorAt, nDimsAt, neAt, typeAt, offsetAt, shape, type, offset, byteLength, dataAt: 0 });
  }
  const infosEnd = at;
  const dataOffset = Math.ceil(infosEnd / alignment) * alignment;
  if (tensorCount > 0) checks.push({ at: infosEnd, bytes: dataOffset - infosEnd, code: "GGUF_TRUNCATED", what: "data section start" });
  for (const tensor of [...tensors].sort((a, b) => a.offset - b.offset)) {
    tensor.dataAt = dataOffset + tensor.offset;
    checks.push({ at: tensor.dataAt, bytes: tensor.byteLength, code: "GGUF_TRUNCATED", what: `data of ${tensor.name}` });
  }
  return { kvs, tensors, infosEnd, dataOffset, alignment, checks };
}

/** The code the reader gives for the file cut to its first `length` bytes ("OK" if it is whole). */
export function expectedCodeForCut(layout: GgufLayout, length: number): string {
  for (const check of layout.checks) if (check.at + check.bytes > length) return check.code;
  return "OK";
}

export function kvLayout(layout: GgufLayout, key: string): KvLayout {
  const kv = layout.kvs.find((k) => k.key === key);
  if (!kv) throw new Error(`no metadata key ${key} in the file`);
  return kv;
}

export function tensorLayout(layout: GgufLayout, name: string): TensorLayout {
  const tensor = layout.tensors.find((t) => t.name === name);
  if (!tensor) throw new Error(`no tensor ${name} in the file`);
  return tensor;
}

// ============================================================================================== patching

export function setU8(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value;
}

export function setU16(bytes: Uint8Array, at: number, value: number): void {
  new DataView(bytes.buffer, bytes.byteOffset).setUint16(at, value, true);
}

export function setU32(bytes: Uint8Array, at: number, value: number): void {
  new DataView(bytes.buffer, bytes.byteOffset).setUint32(at, value >>> 0, true);
}

export function setU64(bytes: Uint8Array, at: number, value: bigint | number): void {
  new DataView(bytes.buffer, bytes.byteOffset).setBigUint64(at, BigInt.asUintN(64, BigInt(value)), true);
}

export function setF32(bytes: Uint8Array, at: number, value: number): void {
  new DataView(bytes.buffer, bytes.byteOffset).setFloat32(at, value, true);
}

/** Overwrites text of the same byte length (keys and tensor names). */
export function setText(bytes: Uint8Array, at: number, text: string | Uint8Array): void {
  bytes.set(typeof text === "string" ? new TextEncoder().encode(text) : text, at);
}

// ============================================================================================== hand-built files

/** Little-endian bytes of u32 / u64 fields and UTF-8 strings with their u64 length, for hand-built files. */
export function fieldBytes(...fields: (["u32", number] | ["u64", number | bigint] | ["str", string] | ["raw", Uint8Array])[]): Uint8Array {
  const parts = fields.map(([kind, value]) => {
    if (kind === "raw") return value;
    if (kind === "str") {
      const text = new TextEncoder().encode(value);
      return concatBytes(fieldBytes(["u64", text.length]), text);
    }
    const bytes = new Uint8Array(kind === "u32" ? 4 : 8);
    const view = new DataView(bytes.buffer);
    if (kind === "u32") view.setUint32(0, value as number, true);
    else view.setBigUint64(0, BigInt(value), true);
    return bytes;
  });
  return concatBytes(...parts);
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  return concatList(parts);
}

/** concatBytes for lists too long to spread into arguments. */
function concatList(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

export interface RawTensorInfo {
  name: string;
  shape: number[];
  type: GgmlType;
  /** Relative to the data section. */
  offset: number;
}

/**
 * A GGUF v3 file with these metadata pairs (value bytes given raw, after the type) and tensor infos, padded to 32
 * and followed by zeroed tensor data up to the furthest tensor end. Fast for files of 100k entries.
 */
export function rawGguf(kvs: { key: string; type: GgufValueType; value: Uint8Array }[], tensors: RawTensorInfo[] = []): Uint8Array {
  const header = concatList([
    new TextEncoder().encode("GGUF"),
    fieldBytes(["u32", 3], ["u64", tensors.length], ["u64", kvs.length]),
    ...kvs.map((kv) => fieldBytes(["str", kv.key], ["u32", kv.type], ["raw", kv.value])),
    ...tensors.map((t) => fieldBytes(["str", t.name], ["u32", t.shape.length], ...t.shape.map((d): ["u64", number] => ["u64", d]),
      ["u32", t.type], ["u64", t.offset])),
  ]);
  const dataOffset = Math.ceil(header.length / 32) * 32;
  const dataBytes = tensors.reduce((end, t) => {
    const traits = GGML_TYPE_TRAITS[t.type];
    return Math.max(end, t.offset + (t.shape.reduce((a, b) => a * b, 1) / traits.blockSize) * traits.blockBytes);
  }, 0);
  const out = new Uint8Array(dataOffset + dataBytes);
  out.set(header);
  return out;
}
