/**
 * Reads a GGUF file's header, metadata and tensor descriptors through the native reader, which checks every
 * field (docs/gguf.md lists the guarantees and error codes). Tensor data stays in the file.
 *
 * @example
 * ```ts
 * const info = await readGguf("model.gguf");
 * console.log(info.metadata.get("general.architecture")?.value, info.tensors.length);
 * ```
 * @module
 */
import { withNativeErrors } from "../errors.js";
import { native } from "../native.js";
import type { GgmlType, GgufValue, GgufValueType } from "./types.js";

/** One metadata value with its GGUF type; arrays also carry their element type. */
export interface GgufMetadataEntry {
  type: GgufValueType;
  /** Present for ARRAY values. */
  elementType?: GgufValueType;
  /**
   * Integers up to 32 bits and floats as number, UINT64/INT64 as bigint, BOOL as boolean, STRING as string;
   * numeric arrays as the matching typed array (a copy), BOOL and STRING arrays as arrays, nested arrays as
   * arrays of those.
   */
  value: GgufValue;
}

export interface GgufTensorDescriptor {
  name: string;
  type: GgmlType;
  /** ggml order: shape[0] is the contiguous row length. */
  shape: number[];
  /** Absolute offset of the tensor's first byte in the file. */
  offset: number;
  byteLength: number;
}

export interface GgufFileInfo {
  version: number;
  /** general.alignment, or the default 32. */
  alignment: number;
  /** Absolute offset of the tensor data section. */
  dataOffset: number;
  fileSize: number;
  /** In file order. */
  metadata: Map<string, GgufMetadataEntry>;
  /** In file order. */
  tensors: GgufTensorDescriptor[];
}

export interface ReadGgufOptions {
  /**
   * Also scan every tensor's values (F32/F16/BF16) and block scales (quantized types) for NaN and infinity,
   * failing with `GGUF_NAN`. Reads the whole file. Default false.
   */
  verifyTensorData?: boolean;
}

/** What the addon's readGguf resolves with. @internal */
export interface NativeGgufFile {
  version: number;
  alignment: number;
  dataOffset: number;
  fileSize: number;
  metadata: { key: string; type: number; elementType?: number; value: GgufValue }[];
  tensors: { name: string; type: number; shape: number[]; offset: number; byteLength: number }[];
}

/**
 * Parses the GGUF file at `path` off the main thread.
 * @throws {TypeError} for a bad argument.
 * @throws {GgufError} (`GGUF_*` code) when the file cannot be opened or is malformed.
 */
export async function readGguf(path: string, options: ReadGgufOptions = {}): Promise<GgufFileInfo> {
  checkPath(path);
  const verifyTensorData = checkVerifyOption(options);
  const file = await withNativeErrors(() => native().readGguf(path, verifyTensorData));
  const metadata = new Map<string, GgufMetadataEntry>();
  for (const { key, type, elementType, value } of file.metadata) {
    metadata.set(key, elementType === undefined ? { type, value } : { type, elementType, value });
  }
  return {
    version: file.version,
    alignment: file.alignment,
    dataOffset: file.dataOffset,
    fileSize: file.fileSize,
    metadata,
    tensors: file.tensors,
  };
}

/** @internal */
export function checkPath(path: unknown): asserts path is string {
  if (typeof path !== "string" || path.length === 0) {
    throw new TypeError(`path must be a non-empty string; got ${describe(path)}`);
  }
  if (path.includes("\0")) throw new TypeError(`path must not contain NUL characters; got ${JSON.stringify(path)}`);
}

/** The verifyTensorData flag of an options object, checked. @internal */
export function checkVerifyOption(options: unknown): boolean {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`options must be an object; got ${describe(options)}`);
  }
  const { verifyTensorData } = options as { verifyTensorData?: unknown };
  if (verifyTensorData !== undefined && typeof verifyTensorData !== "boolean") {
    throw new TypeError(`options.verifyTensorData must be a boolean; got ${describe(verifyTensorData)}`);
  }
  return verifyTensorData ?? false;
}

function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "bigint") return `${value}n`;
  if (value === null || typeof value !== "object") return String(value);
  return Array.isArray(value) ? "an array" : "an object";
}
