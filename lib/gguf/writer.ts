/**
 * GGUF v3 writer: metadata of every value type and tensors given as raw bytes of their ggml type.
 * Tensor data may be produced lazily, one tensor at a time, so a large file never sits whole in memory.
 * The file appears at its path only when complete: it is written to a temporary name and renamed.
 *
 * @example
 * ```ts
 * const writer = new GgufWriter();
 * writer.set("general.architecture", GgufValueType.STRING, "llama");
 * writer.addTensor("output_norm.weight", GgmlType.F32, [4096], new Uint8Array(4096 * 4));
 * await writer.write("model.gguf");
 * ```
 * @module
 */
import { open, rename, rm } from "node:fs/promises";
import { randomBytes } from "node:crypto";

import { AbortError, ArgumentRangeError, ArgumentTypeError, GgufError } from "../errors.js";
import { checkFunction, checkOptions, checkSignal } from "../validate.js";
import { checkPath } from "./reader.js";
import { GGML_TYPE_TRAITS, GgmlType, GgufValueType, type GgufValue } from "./types.js";

const GGUF_MAGIC = 0x46554747; // "GGUF" little-endian
const GGUF_VERSION = 3;
const MAX_TENSOR_NAME_BYTES = 63;

/**
 * Tensor bytes, or a function that makes them when the writer reaches the tensor: all at once, or as consecutive
 * chunks (an async iterable), so a tensor never has to sit whole in memory.
 * @example
 * ```ts
 * import { GgmlType, GgufWriter, quantize, type TensorData } from "mixtral-native";
 * const lazy: TensorData = () => quantize(GgmlType.Q8_0, new Float32Array(4096 * 4096).fill(0.01), 4096);
 * new GgufWriter().addTensor("blk.0.attn_q.weight", GgmlType.Q8_0, [4096, 4096], lazy);
 * ```
 */
export type TensorData = Uint8Array | (() => Uint8Array | Promise<Uint8Array> | AsyncIterable<Uint8Array>);

interface PendingKv {
  key: string;
  type: GgufValueType;
  value: GgufValue;
  elementType?: GgufValueType;
}

interface PendingTensor {
  name: string;
  type: GgmlType;
  shape: readonly number[];
  byteLength: number;
  data: TensorData;
}

/**
 * Options of the {@link GgufWriter} constructor.
 * @example
 * ```ts
 * import { GgufWriter } from "mixtral-native";
 * const writer = new GgufWriter({ alignment: 64 }); // also writes general.alignment = 64
 * ```
 */
export interface GgufWriterOptions {
  /** `general.alignment`; a power of two. Default 32. */
  alignment?: number;
}

/**
 * Options of {@link GgufWriter.write}.
 * @example
 * ```ts
 * await writer.write("model.gguf", {
 *   signal: AbortSignal.timeout(60_000), // AbortError; nothing is left at the path
 *   onProgress: (written, count) => console.log(`${written}/${count} tensors`),
 * });
 * ```
 */
export interface WriteOptions {
  /** Stops the write between tensors with an AbortError; the temporary file is removed. */
  signal?: AbortSignal;
  /** Called after each tensor with the number written so far. */
  onProgress?: (tensorsWritten: number, tensorCount: number) => void;
}

/**
 * Builds a GGUF v3 file: set metadata keys, add tensors (bytes of their ggml type, possibly made lazily), then
 * {@link write}. The file appears at its path only once complete. The test models of `mixtral-native/testing`
 * are written with it.
 * @example
 * ```ts
 * import { GgmlType, GgufValueType, GgufWriter } from "mixtral-native";
 * const writer = new GgufWriter();
 * writer.set("general.architecture", GgufValueType.STRING, "llama");
 * writer.set("tokenizer.ggml.tokens", GgufValueType.ARRAY, ["<unk>", "<s>", "</s>"], GgufValueType.STRING);
 * writer.addTensor("output_norm.weight", GgmlType.F32, [4096], new Uint8Array(new Float32Array(4096).fill(1).buffer));
 * await writer.write("model.gguf");
 * ```
 */
export class GgufWriter {
  /** `general.alignment`: tensor data offsets are multiples of it. */
  readonly alignment: number;
  private readonly kvs = new Map<string, PendingKv>();
  private readonly tensors = new Map<string, PendingTensor>();

  constructor(options: GgufWriterOptions = {}) {
    const alignment = options.alignment ?? 32;
    if (!Number.isInteger(alignment) || alignment <= 0 || (alignment & (alignment - 1)) !== 0) {
      throw new ArgumentRangeError(`alignment must be a power of two; got ${alignment}`);
    }
    this.alignment = alignment;
    if (alignment !== 32) this.set("general.alignment", GgufValueType.UINT32, alignment);
  }

  /**
   * Sets a metadata key. Arrays need `elementType`; a nested array's elements are arrays of `elementType`'s
   * own kind (only one level of nesting is written).
   */
  set(key: string, type: GgufValueType, value: GgufValue, elementType?: GgufValueType): this {
    if (typeof key !== "string" || key.length === 0) throw new ArgumentTypeError(`key must be a non-empty string`);
    if (type === GgufValueType.ARRAY && elementType === undefined) {
      throw new ArgumentTypeError(`metadata ${key}: an ARRAY value needs elementType`);
    }
    this.kvs.set(key, { key, type, value, elementType });
    return this;
  }

  /** The keys set so far, in write order. */
  keys(): string[] {
    return [...this.kvs.keys()];
  }

  /** Adds a tensor. `shape` is in ggml order: shape[0] is the contiguous row length. */
  addTensor(name: string, type: GgmlType, shape: readonly number[], data: TensorData): this {
    const traits = GGML_TYPE_TRAITS[type];
    if (traits === undefined) throw new ArgumentRangeError(`tensor ${name}: unknown ggml type ${type}`, "ERR_INVALID_ARG_VALUE");
    if (Buffer.byteLength(name) > MAX_TENSOR_NAME_BYTES) {
      throw new ArgumentRangeError(`tensor name ${JSON.stringify(name)} is longer than ${MAX_TENSOR_NAME_BYTES} bytes`);
    }
    if (this.tensors.has(name)) throw new ArgumentRangeError(`tensor ${name} was added twice`, "ERR_INVALID_ARG_VALUE");
    if (shape.length < 1 || shape.length > 4 || shape.some((d) => !Number.isSafeInteger(d) || d <= 0)) {
      throw new ArgumentRangeError(`tensor ${name}: shape must be 1 to 4 positive integers; got [${shape.join(", ")}]`);
    }
    if (shape[0] % traits.blockSize !== 0) {
      throw new ArgumentRangeError(`tensor ${name}: row length ${shape[0]} is not a multiple of ${traits.name}'s block size ${traits.blockSize}`);
    }
    const elements = shape.reduce((a, b) => a * b, 1);
    const byteLength = (elements / traits.blockSize) * traits.blockBytes;
    if (data instanceof Uint8Array && data.byteLength !== byteLength) {
      throw new ArgumentRangeError(`tensor ${name}: expected ${byteLength} bytes of ${traits.name}; got ${data.byteLength}`);
    }
    this.tensors.set(name, { name, type, shape: [...shape], byteLength, data });
    return this;
  }

  /**
   * Writes the file to `path` (via a temporary file renamed at the end; nothing is left behind on failure). When the
   * file system refuses (a missing folder, no space left), rejects with GgufError `GGUF_WRITE_FAILED` naming `path`.
   */
  async write(path: string, options: WriteOptions = {}): Promise<void> {
    checkPath(path);
    const o = checkOptions<WriteOptions>("options", options, ["signal", "onProgress"]);
    const signal = checkSignal("options.signal", o.signal);
    const onProgress =
      o.onProgress === undefined ? undefined : checkFunction<NonNullable<WriteOptions["onProgress"]>>("options.onProgress", o.onProgress);
    if (signal?.aborted) throw new AbortError("GGUF write aborted", { cause: signal.reason });
    const tempPath = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
    // The file system's errors name the temporary file; the caller asked for `path`.
    const io = <T>(operation: Promise<T>): Promise<T> =>
      operation.catch((error: unknown) => {
        throw new GgufError("GGUF_WRITE_FAILED", `cannot write ${JSON.stringify(path)}: ${String((error as Error)?.message ?? error)}`, { cause: error });
      });
    const handle = await io(open(tempPath, "wx"));
    let done = false;
    try {
      const header = this.serializeHeader();
      let position = 0;
      await io(handle.write(header, 0, header.length, position));
      position += header.length;
      const tensors = [...this.tensors.values()];
      for (let i = 0; i < tensors.length; i++) {
        if (signal?.aborted) throw new AbortError("GGUF write aborted", { cause: signal.reason });
        const tensor = tensors[i];
        const data = typeof tensor.data === "function" ? await tensor.data() : tensor.data;
        const start = position;
        for await (const bytes of data instanceof Uint8Array ? [data] : data) {
          if (signal?.aborted) throw new AbortError("GGUF write aborted", { cause: signal.reason });
          if (position - start + bytes.byteLength > tensor.byteLength) break;
          await io(handle.write(bytes, 0, bytes.byteLength, position));
          position += bytes.byteLength;
        }
        if (position - start !== tensor.byteLength) {
          throw new ArgumentRangeError(`tensor ${tensor.name}: expected ${tensor.byteLength} bytes; got ${position - start} or more`);
        }
        const padding = alignUp(position, this.alignment) - position;
        if (padding > 0) {
          await io(handle.write(new Uint8Array(padding), 0, padding, position));
          position += padding;
        }
        onProgress?.(i + 1, tensors.length);
      }
      await io(handle.sync());
      await io(handle.close());
      await io(rename(tempPath, path));
      done = true;
    } finally {
      if (!done) {
        await handle.close().catch(() => {});
        await rm(tempPath, { force: true });
      }
    }
  }

  /** Header, metadata, tensor infos and the padding up to the data section. */
  private serializeHeader(): Buffer {
    const out = new ByteSink();
    out.u32(GGUF_MAGIC);
    out.u32(GGUF_VERSION);
    out.u64(BigInt(this.tensors.size));
    out.u64(BigInt(this.kvs.size));
    for (const kv of this.kvs.values()) {
      out.string(kv.key);
      out.u32(kv.type);
      writeValue(out, kv.key, kv.type, kv.value, kv.elementType);
    }
    let offset = 0;
    for (const tensor of this.tensors.values()) {
      out.string(tensor.name);
      out.u32(tensor.shape.length);
      for (const dim of tensor.shape) out.u64(BigInt(dim));
      out.u32(tensor.type);
      out.u64(BigInt(offset));
      offset = alignUp(offset + tensor.byteLength, this.alignment);
    }
    out.pad(alignUp(out.length, this.alignment) - out.length);
    return out.toBuffer();
  }
}

function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}

function writeValue(out: ByteSink, key: string, type: GgufValueType, value: GgufValue, elementType?: GgufValueType): void {
  const bad = () => new ArgumentTypeError(`metadata ${key}: value ${String(value).slice(0, 40)} does not fit type ${GgufValueType[type] ?? type}`);
  switch (type) {
    case GgufValueType.UINT8: return out.numeric(type, asNumber(value, bad));
    case GgufValueType.INT8:
    case GgufValueType.UINT16:
    case GgufValueType.INT16:
    case GgufValueType.UINT32:
    case GgufValueType.INT32:
    case GgufValueType.FLOAT32:
    case GgufValueType.FLOAT64:
      return out.numeric(type, asNumber(value, bad));
    case GgufValueType.UINT64:
    case GgufValueType.INT64:
      if (typeof value !== "number" && typeof value !== "bigint") throw bad();
      return out.numeric(type, value);
    case GgufValueType.BOOL:
      if (typeof value !== "boolean") throw bad();
      return out.u8(value ? 1 : 0);
    case GgufValueType.STRING:
      if (typeof value !== "string") throw bad();
      return out.string(value);
    case GgufValueType.ARRAY: {
      if (typeof value !== "object" || value === null || !("length" in value)) throw bad();
      const items = value as ArrayLike<GgufValue>;
      out.u32(elementType!);
      out.u64(BigInt(items.length));
      for (let i = 0; i < items.length; i++) {
        if (elementType === GgufValueType.ARRAY) {
          throw new ArgumentTypeError(`metadata ${key}: nested arrays are not written`);
        }
        writeValue(out, key, elementType!, items[i]);
      }
      return;
    }
    default:
      throw new ArgumentTypeError(`metadata ${key}: unknown value type ${type}`, "ERR_INVALID_ARG_VALUE");
  }
}

function asNumber(value: GgufValue, bad: () => Error): number {
  if (typeof value !== "number") throw bad();
  return value;
}

/** A growable little-endian byte buffer. */
class ByteSink {
  private buffer = Buffer.alloc(1 << 16);
  length = 0;

  private reserve(bytes: number): void {
    if (this.length + bytes <= this.buffer.length) return;
    let size = this.buffer.length * 2;
    while (size < this.length + bytes) size *= 2;
    const grown = Buffer.alloc(size);
    this.buffer.copy(grown, 0, 0, this.length);
    this.buffer = grown;
  }

  u8(v: number): void {
    this.reserve(1);
    this.buffer.writeUInt8(v, this.length);
    this.length += 1;
  }

  u32(v: number): void {
    this.reserve(4);
    this.buffer.writeUInt32LE(v, this.length);
    this.length += 4;
  }

  u64(v: bigint): void {
    this.reserve(8);
    this.buffer.writeBigUInt64LE(v, this.length);
    this.length += 8;
  }

  numeric(type: GgufValueType, v: number | bigint): void {
    this.reserve(8);
    const b = this.buffer, at = this.length;
    switch (type) {
      case GgufValueType.UINT8: b.writeUInt8(Number(v), at); this.length += 1; break;
      case GgufValueType.INT8: b.writeInt8(Number(v), at); this.length += 1; break;
      case GgufValueType.UINT16: b.writeUInt16LE(Number(v), at); this.length += 2; break;
      case GgufValueType.INT16: b.writeInt16LE(Number(v), at); this.length += 2; break;
      case GgufValueType.UINT32: b.writeUInt32LE(Number(v), at); this.length += 4; break;
      case GgufValueType.INT32: b.writeInt32LE(Number(v), at); this.length += 4; break;
      case GgufValueType.FLOAT32: b.writeFloatLE(Number(v), at); this.length += 4; break;
      case GgufValueType.FLOAT64: b.writeDoubleLE(Number(v), at); this.length += 8; break;
      case GgufValueType.UINT64: b.writeBigUInt64LE(BigInt(v), at); this.length += 8; break;
      case GgufValueType.INT64: b.writeBigInt64LE(BigInt(v), at); this.length += 8; break;
      default: throw new ArgumentTypeError(`not a numeric GGUF type: ${type}`);
    }
  }

  string(s: string): void {
    const bytes = Buffer.from(s, "utf8");
    this.u64(BigInt(bytes.length));
    this.reserve(bytes.length);
    bytes.copy(this.buffer, this.length);
    this.length += bytes.length;
  }

  pad(bytes: number): void {
    this.reserve(bytes);
    this.buffer.fill(0, this.length, this.length + bytes);
    this.length += bytes;
  }

  toBuffer(): Buffer {
    return this.buffer.subarray(0, this.length);
  }
}
