/**
 * Converting a model file to another quantization type: `mixtral-native quantize` and {@link quantizeModel}.
 *
 * Each tensor streams through in chunks of whole rows: read from the input, dequantized and requantized on native
 * threads (off the main thread), written to a temporary file that is renamed over the output only at the end. Memory
 * stays near two chunks, whatever the model's size.
 *
 * @example
 * ```ts
 * await quantizeModel("mixtral-f16.gguf", "mixtral-q4_k_m.gguf", {
 *   type: "q4_k_m",
 *   onProgress: ({ bytesDone, bytesTotal }) => console.log(`${((100 * bytesDone) / bytesTotal).toFixed(1)}%`),
 * });
 * ```
 * @module
 */
import { constants } from "node:fs";
import { access, open, stat, type FileHandle } from "node:fs/promises";
import { dirname, resolve } from "node:path";

import { AbortError, ArgumentTypeError, GgufError, QuantizeError, withNativeErrors } from "../errors.js";
import { inspectModel } from "../gguf/inspect.js";
import { readGguf, type GgufTensorDescriptor } from "../gguf/reader.js";
import { GGML_TYPE_TRAITS, GgmlType, GgufValueType } from "../gguf/types.js";
import { GgufWriter } from "../gguf/writer.js";
import { physicalCoreCount } from "../model.js";
import { native } from "../native.js";
import { checkFunction, checkInteger, checkSignal, describeValue } from "../validate.js";
import { QUANTIZE_TYPES, quantizeFileType, tensorTypeFor, type QuantizeType } from "./recipes.js";

export { QUANTIZE_TYPES, type QuantizeType } from "./recipes.js";

/**
 * Where a {@link quantizeModel} run is; reported after every chunk.
 * @example
 * ```ts
 * import { quantizeModel, type QuantizeProgress } from "mixtral-native";
 * const report = ({ tensorIndex, tensorCount, tensorName }: QuantizeProgress) =>
 *   console.log(`tensor ${tensorIndex + 1}/${tensorCount}: ${tensorName}`);
 * await quantizeModel("model-f16.gguf", "model-q8_0.gguf", { type: "q8_0", onProgress: report });
 * ```
 */
export interface QuantizeProgress {
  /** The tensor being converted (0-based) and how many the file has. */
  tensorIndex: number;
  tensorCount: number;
  tensorName: string;
  /** Input tensor bytes converted so far, of all the input's tensor bytes. */
  bytesDone: number;
  bytesTotal: number;
}

/**
 * Options of {@link quantizeModel}: the target type, and how the run is threaded, watched and stopped.
 * @example
 * ```ts
 * import { quantizeModel, type QuantizeOptions } from "mixtral-native";
 * const options: QuantizeOptions = { type: "q4_k_m", threads: 2, signal: AbortSignal.timeout(600_000) };
 * await quantizeModel("mixtral-f16.gguf", "mixtral-q4_k_m.gguf", options);
 * ```
 */
export interface QuantizeOptions {
  /** The target: one of {@link QUANTIZE_TYPES}. */
  type: QuantizeType;
  /** Threads that convert rows. Default: the physical core count. */
  threads?: number;
  onProgress?: (progress: QuantizeProgress) => void;
  /** Stops the run within one chunk; nothing is left at the output path. */
  signal?: AbortSignal;
  /**
   * Receives warnings (re-quantizing a file whose tensors are already quantized loses precision twice). Default:
   * `process.emitWarning`.
   */
  onWarning?: (message: string) => void;
}

/**
 * What {@link quantizeModel} wrote: the file type, each tensor's type and any warnings.
 * @example
 * ```ts
 * import { quantizeModel } from "mixtral-native";
 * const result = await quantizeModel("mixtral-f16.gguf", "mixtral-q4_k_m.gguf", { type: "q4_k_m" });
 * console.log(result.tensorTypes, `${(result.bytesWritten / 2 ** 30).toFixed(1)} GiB`);
 * ```
 */
export interface QuantizeResult {
  output: string;
  /** general.file_type written (llama.cpp's LLAMA_FTYPE). */
  fileType: number;
  /** Number of tensors written in each ggml type, e.g. { F32: 9, Q4_K: 8, Q6_K: 3, Q8_0: 4 }. */
  tensorTypes: Record<string, number>;
  /** Every tensor's name and the type it was written in, in file order. */
  tensors: { name: string; type: GgmlType }[];
  bytesWritten: number;
  warnings: string[];
}

/** Rows converted per native call: about this many values, so memory stays bounded and an abort is quick. */
const CHUNK_VALUES = 1 << 22;
const FLOAT_TYPES: ReadonlySet<GgmlType> = new Set([GgmlType.F32, GgmlType.F16, GgmlType.BF16]);
/** The types the converter reads and writes (the scalar reference converters of native/kernels). */
const CONVERTIBLE_TYPES: ReadonlySet<GgmlType> = new Set([
  GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1,
  GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K,
]);

interface PlannedTensor {
  source: GgufTensorDescriptor;
  type: GgmlType;
}

/**
 * Writes the model at `input` to `output` in quantization type `options.type` (a llama.cpp-style mix for the
 * `_s`/`_m` types; docs/quantization.md). Input tensors may be F32, F16, BF16 or any quantized type this library
 * reads. Resolves when the output file is complete.
 * @throws {TypeError} or {@link QuantizeError} for bad arguments, all before any work starts: an unknown type
 * (`QUANTIZE_UNKNOWN_TYPE`, listing the valid ones), output equal to input (`QUANTIZE_SAME_PATH`), an output folder
 * that is missing or not writable (`QUANTIZE_OUTPUT_UNWRITABLE`).
 * @throws {GgufError} when the input is not a valid model file, or `GGUF_WRITE_FAILED` (naming `output`) when the
 * file system refuses the output after the checks (no space left, say); the output path is then left as it was.
 * @throws {AbortError} when `options.signal` fires; the output path is then left as it was.
 * @example
 * ```ts
 * const { tensorTypes } = await quantizeModel("f16.gguf", "q6_k.gguf", { type: "q6_k", signal: AbortSignal.timeout(600_000) });
 * ```
 */
export async function quantizeModel(input: string, output: string, options: QuantizeOptions): Promise<QuantizeResult> {
  const checked = checkOptions(input, output, options);
  await checkPaths(input, output);
  if (checked.signal?.aborted) throw new AbortError("quantization aborted", { cause: checked.signal.reason });

  const info = await inspectModel(input);
  const file = await readGguf(input);
  for (const tensor of file.tensors) {
    if (!CONVERTIBLE_TYPES.has(tensor.type)) {
      throw new QuantizeError("QUANTIZE_UNSUPPORTED_TENSOR",
        `input tensor ${tensor.name} has type ${GGML_TYPE_TRAITS[tensor.type]?.name ?? tensor.type}, which the quantizer cannot read`);
    }
  }
  const model = {
    nLayers: info.nLayers, nExperts: info.nExperts, nGqa: info.nHeads / info.nHeadsKv,
    hasOutput: file.tensors.some((t) => t.name === "output.weight"),
  };
  let attnVIndex = 0;
  const plan: PlannedTensor[] = file.tensors.map((source) => {
    const type = tensorTypeFor(checked.type, source, model, attnVIndex);
    if (source.name.includes("attn_v.weight")) attnVIndex++;
    return { source, type };
  });

  const warnings: string[] = [];
  const requantized = plan.filter((t) => !FLOAT_TYPES.has(t.source.type) && t.source.type !== t.type);
  if (requantized.length > 0) {
    const message = `re-quantizing ${input}: ${requantized.length} of its tensors are already quantized ` +
      `(e.g. ${requantized[0].source.name} is ${GGML_TYPE_TRAITS[requantized[0].source.type].name}); the result is ` +
      `worse than quantizing the F16/F32 original to ${checked.type}`;
    warnings.push(message);
    if (checked.onWarning !== undefined) checked.onWarning(message);
    else process.emitWarning(message, { code: "MIXTRAL_NATIVE_REQUANTIZE" });
  }

  const writer = new GgufWriter({ alignment: file.alignment });
  for (const [key, entry] of file.metadata) {
    if (key === "general.alignment" || key === "general.file_type" || key === "general.quantization_version") continue;
    writer.set(key, entry.type, entry.value, entry.elementType);
  }
  writer.set("general.quantization_version", GgufValueType.UINT32, 2);
  writer.set("general.file_type", GgufValueType.UINT32, quantizeFileType(checked.type));

  const handle = await open(input, "r");
  try {
    const progress = { tensorIndex: 0, tensorCount: plan.length, tensorName: "", bytesDone: 0,
      bytesTotal: plan.reduce((sum, t) => sum + t.source.byteLength, 0) };
    plan.forEach(({ source, type }, index) => {
      writer.addTensor(source.name, type, source.shape, () => convertTensor(handle, source, type, checked, (bytes) => {
        progress.tensorIndex = index;
        progress.tensorName = source.name;
        progress.bytesDone += bytes;
        checked.onProgress?.({ ...progress });
      }));
    });
    await writer.write(output, { signal: checked.signal });
  } finally {
    await handle.close();
  }

  const tensorTypes: Record<string, number> = {};
  for (const { type } of plan) tensorTypes[GGML_TYPE_TRAITS[type].name] = (tensorTypes[GGML_TYPE_TRAITS[type].name] ?? 0) + 1;
  return {
    output, fileType: quantizeFileType(checked.type), tensorTypes,
    tensors: plan.map(({ source, type }) => ({ name: source.name, type })),
    bytesWritten: (await stat(output)).size, warnings,
  };
}

interface CheckedOptions {
  type: QuantizeType;
  threads: number;
  onProgress?: (progress: QuantizeProgress) => void;
  onWarning?: (message: string) => void;
  signal?: AbortSignal;
}

function checkOptions(input: unknown, output: unknown, options: unknown): CheckedOptions {
  if (typeof input !== "string" || input.length === 0) throw new ArgumentTypeError(`input must be a non-empty path string; got ${describeValue(input)}`);
  if (typeof output !== "string" || output.length === 0) throw new ArgumentTypeError(`output must be a non-empty path string; got ${describeValue(output)}`);
  if (typeof options !== "object" || options === null) throw new ArgumentTypeError(`options must be an object with a type; got ${describeValue(options)}`);
  const o = options as Partial<QuantizeOptions>;
  const type = typeof o.type === "string" ? o.type.toLowerCase() : o.type;
  if (!(QUANTIZE_TYPES as readonly unknown[]).includes(type)) {
    throw new QuantizeError("QUANTIZE_UNKNOWN_TYPE", `options.type must be one of ${QUANTIZE_TYPES.join(", ")}; got ${describeValue(o.type)}`);
  }
  return {
    type: type as QuantizeType,
    threads: o.threads === undefined ? physicalCoreCount() : checkInteger("options.threads", o.threads, 1, 1024),
    onProgress: o.onProgress === undefined ? undefined : checkFunction<(progress: QuantizeProgress) => void>("options.onProgress", o.onProgress),
    onWarning: o.onWarning === undefined ? undefined : checkFunction<(message: string) => void>("options.onWarning", o.onWarning),
    signal: checkSignal("options.signal", o.signal),
  };
}

/** Refuses an output that is the input (by path or by inode) or that cannot be created, before any work. */
async function checkPaths(input: string, output: string): Promise<void> {
  const inputStat = await stat(input).catch(() => undefined);
  if (resolve(input) === resolve(output)) {
    throw new QuantizeError("QUANTIZE_SAME_PATH", `output must differ from input; both are ${JSON.stringify(output)}`);
  }
  const outputStat = await stat(output).catch(() => undefined);
  if (inputStat !== undefined && outputStat !== undefined && inputStat.dev === outputStat.dev && inputStat.ino === outputStat.ino) {
    throw new QuantizeError("QUANTIZE_SAME_PATH", `output ${JSON.stringify(output)} is the input file ${JSON.stringify(input)} under another name`);
  }
  if (outputStat?.isDirectory()) {
    throw new QuantizeError("QUANTIZE_OUTPUT_UNWRITABLE", `output ${JSON.stringify(output)} is a directory, not a file path`);
  }
  const folder = dirname(resolve(output));
  try {
    if (!(await stat(folder)).isDirectory()) throw new Error("not a directory");
    await access(folder, constants.W_OK);
  } catch (error) {
    throw new QuantizeError("QUANTIZE_OUTPUT_UNWRITABLE",
      `output ${JSON.stringify(output)} cannot be written: its folder ${JSON.stringify(folder)} is missing or not writable`, { cause: error });
  }
}

/** The output bytes of one tensor, a chunk of whole rows at a time; the next chunk is read while one converts. */
async function* convertTensor(handle: FileHandle, source: GgufTensorDescriptor, type: GgmlType, options: CheckedOptions,
    onChunk: (inputBytes: number) => void): AsyncGenerator<Uint8Array> {
  const rowLength = source.shape[0];
  const rows = source.shape.slice(1).reduce((a, b) => a * b, 1);
  const rowBytes = source.byteLength / rows;
  const rowsPerChunk = Math.max(1, Math.floor(CHUNK_VALUES / rowLength));
  const read = async (row: number): Promise<Uint8Array> => {
    const length = Math.min(rowsPerChunk, rows - row) * rowBytes;
    const bytes = new Uint8Array(length);
    const { bytesRead } = await handle.read(bytes, 0, length, source.offset + row * rowBytes);
    if (bytesRead !== length) throw new GgufError("GGUF_TRUNCATED", `input tensor ${source.name} ends early: the file is shorter than its header says`);
    return bytes;
  };
  let next: Promise<Uint8Array> | undefined = read(0);
  for (let row = 0; row < rows; row += rowsPerChunk) {
    const chunk: Uint8Array = await next!;
    next = row + rowsPerChunk < rows ? read(row + rowsPerChunk) : undefined;
    // an abort rejects nothing in flight: let the read settle so its rejection is never unhandled
    next?.catch(() => {});
    if (options.signal?.aborted) throw new AbortError("quantization aborted", { cause: options.signal.reason });
    const converted = source.type === type
      ? chunk
      : await withNativeErrors(() => native().convertRows(source.type, chunk, type, rowLength, options.threads));
    onChunk(chunk.byteLength);
    yield converted;
  }
}
