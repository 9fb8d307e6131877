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
import { ArgumentTypeError, withNativeErrors } from "../errors.js";
import { native } from "../native.js";
import { checkBoolean, checkOptions, describeValue } from "../validate.js";
import type { GgmlType, GgufValue, GgufValueType } from "./types.js";

/**
 * One metadata value with its GGUF type; arrays also carry their element type.
 * @example
 * ```ts
 * import { GgufValueType, readGguf, type GgufMetadataEntry } from "mixtral-native";
 * const { metadata } = await readGguf("model.gguf");
 * const entry: GgufMetadataEntry | undefined = metadata.get("llama.context_length");
 * if (entry?.type === GgufValueType.UINT32) console.log(entry.value); // e.g. 32768
 * ```
 */
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

/**
 * Where one tensor lives in the file and what it holds: name, ggml type, shape and byte range.
 * @example
 * ```ts
 * import { GgmlType, readGguf, type GgufTensorDescriptor } from "mixtral-native";
 * const { tensors } = await readGguf("mixtral.gguf");
 * const experts: GgufTensorDescriptor[] = tensors.filter((t) => t.name.endsWith("_exps.weight"));
 * for (const { name, type, shape, byteLength } of experts) console.log(name, GgmlType[type], shape, byteLength);
 * ```
 */
export interface GgufTensorDescriptor {
  name: string;
  type: GgmlType;
  /** ggml order: shape[0] is the contiguous row length. */
  shape: number[];
  /** Absolute offset of the tensor's first byte in the file. */
  offset: number;
  byteLength: number;
}

/**
 * A GGUF file's header, metadata and tensor descriptors: what {@link readGguf} resolves with.
 * @example
 * ```ts
 * import { readGguf, type GgufFileInfo } from "mixtral-native";
 * const { version, metadata, tensors, dataOffset, fileSize }: GgufFileInfo = await readGguf("model.gguf");
 * console.log(`GGUF v${version}: ${metadata.size} keys, ${tensors.length} tensors, ${fileSize - dataOffset} bytes of data`);
 * ```
 */
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

/**
 * Options of {@link readGguf}.
 * @example
 * ```ts
 * import { readGguf } from "mixtral-native";
 * const file = await readGguf("model.gguf", { verifyTensorData: true }); // GgufError GGUF_NAN on a NaN or infinity
 * ```
 */
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
 * Parses the GGUF file at `path` off the main thread. Works on any GGUF file, not only models this library runs.
 * @example
 * ```ts
 * import { readGguf } from "mixtral-native";
 * const { metadata, tensors } = await readGguf("model.gguf");
 * console.log(metadata.get("general.architecture")?.value, tensors.length);
 * ```
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
    throw new ArgumentTypeError(`path must be a non-empty string; got ${describeValue(path)}`);
  }
  if (path.includes("\0")) throw new ArgumentTypeError(`path must not contain NUL characters; got ${JSON.stringify(path)}`);
}

/** The verifyTensorData flag of an options object, checked. @internal */
export function checkVerifyOption(options: unknown): boolean {
  const { verifyTensorData } = checkOptions<ReadGgufOptions>("options", options, ["verifyTensorData"]);
  return verifyTensorData === undefined ? false : checkBoolean("options.verifyTensorData", verifyTensorData);
}
