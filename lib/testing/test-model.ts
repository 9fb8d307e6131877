/**
 * Deterministic synthetic Mixtral-architecture GGUF files, laid out as llama.cpp's converter writes them
 * (REFERENCE.md "Mixtral in GGUF"), with the real Mistral v1 vocabulary and the Mixtral-Instruct chat template.
 * They carry random weights, so their text is gibberish, but every number is a pure function of
 * (seed, tensor name, element index): the same options always give the same bytes, and the merged and legacy
 * expert layouts of one seed hold the same experts.
 *
 * The weight generator ({@link syntheticValues}):
 * - key(seed, name) = lowbias32(fnv1a32(UTF-8 bytes of name) ^ lowbias32(seed))
 * - bits(i) = lowbias32(lowbias32((i + 0x9E3779B9) mod 2^32) ^ key), for element index i
 * - u(i) = ((bits(i) >>> 8) + 0.5) / 2^23 - 1, uniform on (-1, 1)
 * - value(i) = center + amplitude · u(i)
 * where lowbias32 is Chris Wellons' 32-bit integer hash (x ^= x >>> 16; x *= 0x7feb352d; x ^= x >>> 15;
 * x *= 0x846ca68b; x ^= x >>> 16) and fnv1a32 the 32-bit FNV-1a hash. A merged expert tensor
 * `blk.N.ffn_gate_exps.weight` is the concatenation of the experts `blk.N.ffn_gate.E.weight`, each generated
 * under its legacy name, so both layouts carry identical numbers.
 *
 * @example
 * ```ts
 * import { GgmlType } from "mixtral-native";
 * import { createTestModel, cachedTestModel } from "mixtral-native/testing";
 * await createTestModel({ path: "tiny.gguf", nExperts: 4, type: GgmlType.Q8_0 });
 * const path = await cachedTestModel({ nLayers: 1 }); // built once, then reused
 * ```
 * @module
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";

import { ArgumentRangeError, ArgumentTypeError } from "../errors.js";
import { GgufWriter } from "../gguf/writer.js";
import { GGML_TYPE_TRAITS, GgmlType, GgufValueType, ggmlByteLength } from "../gguf/types.js";
import { QUANTIZABLE_TYPES, quantize } from "../gguf/quantize.js";
import { packageRoot } from "../native.js";
import { checkBoolean, checkString, describeValue } from "../validate.js";
import { loadMistralV1Vocabulary } from "./mistral-vocab.js";

/**
 * Where the experts live: one 3-D tensor per projection (`ffn_gate_exps`) or one 2-D tensor per expert (late 2023).
 * @example
 * ```ts
 * import { cachedTestModel, type TestModelLayout } from "mixtral-native/testing";
 * const layout: TestModelLayout = "legacy";
 * const path = await cachedTestModel({ layout }); // blk.N.ffn_gate.E.weight, as GGUFs converted in late 2023
 * ```
 */
export type TestModelLayout = "merged" | "legacy";

/**
 * Options of {@link createTestModel}: where to write the file and the model's shape, weight type and seed.
 * Every field but `path` has a small default (2 layers, 4 experts, hidden size 256, F32).
 * @example
 * ```ts
 * import { GgmlType } from "mixtral-native";
 * import { createTestModel, type TestModelOptions } from "mixtral-native/testing";
 * const options: TestModelOptions = { path: "moe-q8.gguf", nLayers: 4, nExperts: 8, nExpertsUsed: 2, type: GgmlType.Q8_0, seed: 3 };
 * await createTestModel(options);
 * ```
 */
export interface TestModelOptions {
  /** Output file. Its folder must exist. */
  path: string;
  /** Hidden size (`llama.embedding_length`). Default 256. */
  nEmbd?: number;
  /** Number of blocks. Default 2. */
  nLayers?: number;
  /** Query heads. Default 8. nEmbd / nHeads is the head size and must be even. */
  nHeads?: number;
  /** Key/value heads; divides nHeads. Default nHeads / 4 (Mixtral's GQA ratio) when 4 divides nHeads, else nHeads. */
  nHeadsKv?: number;
  /** FFN (expert) hidden size. Default 512. */
  nFf?: number;
  /** Experts per layer; 0 writes a dense Mistral/Llama model (`ffn_gate|up|down`). Default 4. */
  nExperts?: number;
  /** Experts each token is routed to, 1..nExperts (0 for dense). Default min(2, nExperts). */
  nExpertsUsed?: number;
  /** ggml type of every 2-D weight (norms and the router stay F32). Default F32. */
  type?: GgmlType;
  /** Weight seed, an unsigned 32-bit integer. Default 1. */
  seed?: number;
  /** `llama.context_length`. Default 2048. */
  contextLength?: number;
  /** Writes `llama.attention.sliding_window` when given. */
  slidingWindow?: number;
  /** Default "merged". "legacy" needs experts. */
  layout?: TestModelLayout;
  /** `llama.rope.freq_base`. Default 1e6 (Mixtral's). */
  ropeFreqBase?: number;
  /** Omit `output.weight`, so the output projection reuses `token_embd.weight`. Default false. */
  tiedOutput?: boolean;
  /** `general.name`. Default "mixtral-native synthetic test model". */
  name?: string;
}

/**
 * Every option with its default filled in (`slidingWindow` stays undefined when not given): what
 * {@link resolveTestModelOptions} returns and {@link TestModelFile.options} holds.
 * @example
 * ```ts
 * import { resolveTestModelOptions, type ResolvedTestModelOptions } from "mixtral-native/testing";
 * const { nHeadsKv, nExpertsUsed }: ResolvedTestModelOptions = resolveTestModelOptions({ nHeads: 16, nExperts: 8 }); // 4, 2
 * ```
 */
export interface ResolvedTestModelOptions {
  nEmbd: number;
  nLayers: number;
  nHeads: number;
  nHeadsKv: number;
  nFf: number;
  nExperts: number;
  nExpertsUsed: number;
  type: GgmlType;
  seed: number;
  contextLength: number;
  slidingWindow: number | undefined;
  layout: TestModelLayout;
  ropeFreqBase: number;
  tiedOutput: boolean;
  name: string;
}

/**
 * What {@link createTestModel} resolves with: the file's path, the options it was built from (defaults filled
 * in) and its tensor count.
 * @example
 * ```ts
 * import { createTestModel, type TestModelFile } from "mixtral-native/testing";
 * const { path, options, tensorCount }: TestModelFile = await createTestModel({ path: "tiny.gguf", nLayers: 1 });
 * console.log(path, options.nExperts, tensorCount); // tiny.gguf 4 13
 * ```
 */
export interface TestModelFile {
  path: string;
  options: ResolvedTestModelOptions;
  tensorCount: number;
}

/**
 * The vocabulary size of every test model: Mistral v1's 32000 tokens (the logits' length).
 * @example
 * ```ts
 * import { Mixtral } from "mixtral-native";
 * import { cachedTestModel, TEST_MODEL_VOCAB_SIZE } from "mixtral-native/testing";
 * const model = await Mixtral.load(await cachedTestModel());
 * const logits = await model.createSession().eval(model.tokenizer.encode("Hi"));
 * logits.length === TEST_MODEL_VOCAB_SIZE; // true
 * ```
 */
export const TEST_MODEL_VOCAB_SIZE = 32000;
/**
 * `llama.attention.layer_norm_rms_epsilon` of every test model (Mixtral's): the epsilon a reference
 * implementation must use to match the engine.
 * @example
 * ```ts
 * import { TEST_MODEL_RMS_EPS } from "mixtral-native/testing";
 * const rmsNorm = (x: Float32Array, weight: Float32Array) => {
 *   const scale = 1 / Math.sqrt(x.reduce((sum, v) => sum + v * v, 0) / x.length + TEST_MODEL_RMS_EPS);
 *   return x.map((v, i) => v * scale * weight[i]);
 * };
 * ```
 */
export const TEST_MODEL_RMS_EPS = 1e-5;
/**
 * Bumped whenever the bytes a given set of options produces change, so cached files are rebuilt: it is part of
 * {@link testModelCacheName}'s hash. Key your own caches of derived data on it too.
 * @example
 * ```ts
 * import { TEST_MODEL_FORMAT_VERSION } from "mixtral-native/testing";
 * const referenceLogitsFile = `.cache/reference-logits-v${TEST_MODEL_FORMAT_VERSION}.json`;
 * ```
 */
export const TEST_MODEL_FORMAT_VERSION = 1;

/**
 * llama.cpp's `general.file_type` (LLAMA_FTYPE in llama.h) of a file whose matrices are all of one type.
 * A pure K-quant file maps to the "_S" mix, the one made almost entirely of that type.
 */
const LLAMA_FILE_TYPE: Partial<Record<GgmlType, number>> = {
  [GgmlType.F32]: 0, // ALL_F32
  [GgmlType.F16]: 1, // MOSTLY_F16
  [GgmlType.Q4_0]: 2, // MOSTLY_Q4_0
  [GgmlType.Q4_1]: 3, // MOSTLY_Q4_1
  [GgmlType.Q8_0]: 7, // MOSTLY_Q8_0
  [GgmlType.Q5_0]: 8, // MOSTLY_Q5_0
  [GgmlType.Q5_1]: 9, // MOSTLY_Q5_1
  [GgmlType.Q2_K]: 10, // MOSTLY_Q2_K
  [GgmlType.Q3_K]: 11, // MOSTLY_Q3_K_S
  [GgmlType.Q4_K]: 14, // MOSTLY_Q4_K_S
  [GgmlType.Q5_K]: 16, // MOSTLY_Q5_K_S
  [GgmlType.Q6_K]: 18, // MOSTLY_Q6_K
  [GgmlType.BF16]: 32, // MOSTLY_BF16
};

/**
 * Weight types a test model can have: whatever quantize() writes (adding a type there adds it here).
 * @example
 * ```ts
 * import { GGML_TYPE_TRAITS } from "mixtral-native";
 * import { cachedTestModel, TEST_MODEL_TYPES } from "mixtral-native/testing";
 * for (const type of TEST_MODEL_TYPES) console.log(GGML_TYPE_TRAITS[type].name, await cachedTestModel({ type }));
 * ```
 */
export const TEST_MODEL_TYPES: readonly GgmlType[] = QUANTIZABLE_TYPES.filter((t) => LLAMA_FILE_TYPE[t] !== undefined);

/**
 * Mixtral-8x7B-Instruct-v0.1's chat template, as its tokenizer_config.json shipped it: the
 * `tokenizer.chat_template` every test model carries. Write it into your own test files to get the same chat
 * formatting.
 * @example
 * ```ts
 * import { GgufValueType, GgufWriter } from "mixtral-native";
 * import { MIXTRAL_INSTRUCT_CHAT_TEMPLATE } from "mixtral-native/testing";
 * new GgufWriter().set("tokenizer.chat_template", GgufValueType.STRING, MIXTRAL_INSTRUCT_CHAT_TEMPLATE);
 * ```
 */
export const MIXTRAL_INSTRUCT_CHAT_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}" +
  "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
  "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}" +
  "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}" +
  "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}";

// ---------------------------------------------------------------------------------------------------------------
// Weight scales
// ---------------------------------------------------------------------------------------------------------------
// Uniform noise of amplitude a has standard deviation a/√3. Projections get std 1/√(row length), so every
// activation stays near unit scale through any depth.
const UNIFORM_STD_TO_AMPLITUDE = Math.sqrt(3);
/** Std of the token embeddings: the same scale as what attention and the FFN add to the residual stream. */
const EMBEDDING_STD = 1;
/** Std of the router logits: large enough that the top-k experts differ from token to token with clear margins. */
const ROUTER_LOGIT_STD = 2;
/** Std of the output logits: 32000 logits of std 5 give a peaked next-token distribution, not a near-uniform one. */
const OUTPUT_LOGIT_STD = 5;
/** Norm weights are 1 ± this. */
const NORM_NOISE = 0.1;

// ---------------------------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------------------------

const DEFAULTS = {
  nEmbd: 256,
  nLayers: 2,
  nHeads: 8,
  nFf: 512,
  nExperts: 4,
  type: GgmlType.F32,
  seed: 1,
  contextLength: 2048,
  layout: "merged" as TestModelLayout,
  ropeFreqBase: 1e6,
  tiedOutput: false,
  name: "mixtral-native synthetic test model",
};

const OPTION_KEYS = new Set([
  "path", "nEmbd", "nLayers", "nHeads", "nHeadsKv", "nFf", "nExperts", "nExpertsUsed", "type", "seed",
  "contextLength", "slidingWindow", "layout", "ropeFreqBase", "tiedOutput", "name",
]);

function integerOption(name: string, value: unknown, fallback: number | undefined, min: number, max: number): number {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== "number") throw new ArgumentTypeError(`options.${name} must be a number; got ${describeValue(value)}`);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ArgumentRangeError(`options.${name} must be an integer in [${min}, ${max}]; got ${value}`);
  }
  return value;
}

/**
 * Checks every option and fills in the defaults, as {@link createTestModel} does before writing anything.
 * Throws TypeError/RangeError naming the option.
 * @example
 * ```ts
 * import { resolveTestModelOptions } from "mixtral-native/testing";
 * resolveTestModelOptions({}).nExpertsUsed;    // 2
 * resolveTestModelOptions({ nEmbd: 100, nHeads: 3 }); // RangeError: options.nHeads must divide nEmbd 100; got 3
 * ```
 */
export function resolveTestModelOptions(options: Omit<TestModelOptions, "path">): ResolvedTestModelOptions {
  if (typeof options !== "object" || options === null) throw new ArgumentTypeError(`options must be an object; got ${describeValue(options)}`);
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) throw new ArgumentTypeError(`options.${key} is not an option of createTestModel`);
  }
  const o = options as Partial<TestModelOptions>;
  const nEmbd = integerOption("nEmbd", o.nEmbd, DEFAULTS.nEmbd, 2, 65536);
  const nLayers = integerOption("nLayers", o.nLayers, DEFAULTS.nLayers, 1, 512);
  const nHeads = integerOption("nHeads", o.nHeads, DEFAULTS.nHeads, 1, nEmbd);
  const nHeadsKv = integerOption("nHeadsKv", o.nHeadsKv, nHeads % 4 === 0 ? nHeads / 4 : nHeads, 1, nHeads);
  const nFf = integerOption("nFf", o.nFf, DEFAULTS.nFf, 1, 1 << 20);
  const nExperts = integerOption("nExperts", o.nExperts, DEFAULTS.nExperts, 0, 256);
  const nExpertsUsed = nExperts === 0
    ? integerOption("nExpertsUsed", o.nExpertsUsed, 0, 0, 0)
    : integerOption("nExpertsUsed", o.nExpertsUsed, Math.min(2, nExperts), 1, nExperts);
  const seed = integerOption("seed", o.seed, DEFAULTS.seed, 0, 0xffffffff);
  const contextLength = integerOption("contextLength", o.contextLength, DEFAULTS.contextLength, 1, 0x7fffffff);
  const slidingWindow = o.slidingWindow === undefined ? undefined : integerOption("slidingWindow", o.slidingWindow, undefined, 1, 0x7fffffff);

  if (nEmbd % nHeads !== 0) throw new ArgumentRangeError(`options.nHeads must divide nEmbd ${nEmbd}; got ${nHeads}`);
  if ((nEmbd / nHeads) % 2 !== 0) {
    throw new ArgumentRangeError(`options.nHeads must leave an even head size (RoPE rotates pairs); nEmbd ${nEmbd} / nHeads ${nHeads} = ${nEmbd / nHeads}`);
  }
  if (nHeads % nHeadsKv !== 0) throw new ArgumentRangeError(`options.nHeadsKv must divide nHeads ${nHeads}; got ${nHeadsKv}`);

  const type = o.type ?? DEFAULTS.type;
  if (typeof type !== "number") throw new ArgumentTypeError(`options.type must be a GgmlType; got ${describeValue(type)}`);
  if (!TEST_MODEL_TYPES.includes(type)) {
    throw new ArgumentRangeError(
      `options.type must be one of ${TEST_MODEL_TYPES.map((t) => GGML_TYPE_TRAITS[t].name).join(", ")}; got ${GGML_TYPE_TRAITS[type]?.name ?? type}`,
      "ERR_INVALID_ARG_VALUE",
    );
  }
  const blockSize = GGML_TYPE_TRAITS[type].blockSize;
  if (nEmbd % blockSize !== 0) throw new ArgumentRangeError(`options.nEmbd must be a multiple of ${GGML_TYPE_TRAITS[type].name}'s block size ${blockSize}; got ${nEmbd}`);
  if (nFf % blockSize !== 0) throw new ArgumentRangeError(`options.nFf must be a multiple of ${GGML_TYPE_TRAITS[type].name}'s block size ${blockSize}; got ${nFf}`);
  // The generator indexes one tensor's elements with 32 bits; token_embd is the largest single tensor.
  if (nEmbd * TEST_MODEL_VOCAB_SIZE > 0xffffffff || nEmbd * nFf > 0xffffffff) {
    throw new ArgumentRangeError(`options.nEmbd ${nEmbd} × nFf ${nFf} or × vocabulary is beyond 2^32 elements per tensor`);
  }

  const layout = o.layout ?? DEFAULTS.layout;
  if (layout !== "merged" && layout !== "legacy") throw new ArgumentRangeError(`options.layout must be "merged" or "legacy"; got ${describeValue(layout)}`, "ERR_INVALID_ARG_VALUE");
  if (layout === "legacy" && nExperts === 0) throw new ArgumentRangeError(`options.layout "legacy" stores experts; a dense model (nExperts 0) has none`);

  const ropeFreqBase = o.ropeFreqBase ?? DEFAULTS.ropeFreqBase;
  if (typeof ropeFreqBase !== "number") throw new ArgumentTypeError(`options.ropeFreqBase must be a number; got ${describeValue(ropeFreqBase)}`);
  if (!Number.isFinite(ropeFreqBase) || ropeFreqBase <= 1) throw new ArgumentRangeError(`options.ropeFreqBase must be a finite number above 1; got ${ropeFreqBase}`);

  const tiedOutput = checkBoolean("options.tiedOutput", o.tiedOutput ?? DEFAULTS.tiedOutput);
  const name = checkString("options.name", o.name ?? DEFAULTS.name);

  return {
    nEmbd, nLayers, nHeads, nHeadsKv, nFf, nExperts, nExpertsUsed, type, seed, contextLength, slidingWindow,
    layout, ropeFreqBase, tiedOutput, name,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The weight generator
// ---------------------------------------------------------------------------------------------------------------

function lowbias32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(text, "utf8")) hash = Math.imul(hash ^ byte, 0x01000193);
  return hash >>> 0;
}

/** The stream key of one logical tensor. */
function streamKey(seed: number, name: string): number {
  return lowbias32(fnv1a32(name) ^ lowbias32(seed));
}

/** Fills `out` with values `start .. start + out.length - 1` of the stream `key`: center + amplitude · u, u on (-1, 1). */
function fillStream(out: Float32Array, key: number, start: number, center: number, amplitude: number): void {
  const scale = amplitude / 8388608; // 2^23
  const base = center - amplitude;
  // lowbias32 twice, inlined and kept in int32 arithmetic: this loop makes every weight of a build.
  let counter = (start + 0x9e3779b9) | 0;
  const mixedKey = key | 0;
  for (let j = 0; j < out.length; j++) {
    let x = counter;
    counter = (counter + 1) | 0;
    x ^= x >>> 16; x = Math.imul(x, 0x7feb352d); x ^= x >>> 15; x = Math.imul(x, 0x846ca68b); x ^= x >>> 16;
    x ^= mixedKey;
    x ^= x >>> 16; x = Math.imul(x, 0x7feb352d); x ^= x >>> 15; x = Math.imul(x, 0x846ca68b); x ^= x >>> 16;
    out[j] = base + ((x >>> 8) + 0.5) * scale;
  }
}

/**
 * Values `start .. start + count - 1` of the weight stream of logical tensor `name` under `seed`, before any
 * quantization: `center + amplitude · u(i)` (see the module comment for the generator). A reimplementation of
 * the generator in another language can check itself against it.
 * @example
 * ```ts
 * import { syntheticValues } from "mixtral-native/testing";
 * const first = syntheticValues(1, "blk.0.attn_q.weight", 4);        // 4 values on (-1, 1)
 * const later = syntheticValues(1, "blk.0.attn_q.weight", 2, 2);     // equal to first.subarray(2)
 * const norm = syntheticValues(1, "output_norm.weight", 8, 0, 1, 0.1); // on (0.9, 1.1)
 * ```
 */
export function syntheticValues(seed: number, name: string, count: number, start = 0, center = 0, amplitude = 1): Float32Array {
  const out = new Float32Array(count);
  fillStream(out, streamKey(seed, name), start, center, amplitude);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// The tensor plan
// ---------------------------------------------------------------------------------------------------------------

/** One logical matrix: rows of `rowLength` values from the stream of `key`. */
interface WeightPart {
  key: string;
  rowLength: number;
  rows: number;
  center: number;
  amplitude: number;
}

interface PlannedTensor {
  name: string;
  type: GgmlType;
  /** ggml order: shape[0] is the row length. */
  shape: number[];
  /** Concatenated in order (a merged expert tensor has one part per expert). */
  parts: WeightPart[];
}

function plan(o: ResolvedTestModelOptions): PlannedTensor[] {
  const headDim = o.nEmbd / o.nHeads;
  const nEmbdKv = headDim * o.nHeadsKv;
  const norm = { center: 1, amplitude: NORM_NOISE };
  // A matrix whose products (rows of rowLength against unit-scale inputs) have standard deviation outputStd.
  const matrix = (name: string, rowLength: number, rows: number, type = o.type, outputStd = 1): PlannedTensor => ({
    name, type, shape: [rowLength, rows],
    parts: [{ key: name, rowLength, rows, center: 0, amplitude: (UNIFORM_STD_TO_AMPLITUDE * outputStd) / Math.sqrt(rowLength) }],
  });
  const vector = (name: string, length: number): PlannedTensor => ({
    name, type: GgmlType.F32, shape: [length], parts: [{ key: name, rowLength: length, rows: 1, ...norm }],
  });

  const tensors: PlannedTensor[] = [];
  // A tied output reads logits straight off token_embd, so then it gets the output scale.
  const embeddingOutputStd = o.tiedOutput ? OUTPUT_LOGIT_STD : EMBEDDING_STD * Math.sqrt(o.nEmbd);
  tensors.push(matrix("token_embd.weight", o.nEmbd, TEST_MODEL_VOCAB_SIZE, o.type, embeddingOutputStd));
  tensors.push(vector("output_norm.weight", o.nEmbd));
  if (!o.tiedOutput) tensors.push(matrix("output.weight", o.nEmbd, TEST_MODEL_VOCAB_SIZE, o.type, OUTPUT_LOGIT_STD));

  for (let layer = 0; layer < o.nLayers; layer++) {
    const blk = `blk.${layer}`;
    tensors.push(vector(`${blk}.attn_norm.weight`, o.nEmbd));
    tensors.push(matrix(`${blk}.attn_q.weight`, o.nEmbd, o.nEmbd));
    tensors.push(matrix(`${blk}.attn_k.weight`, o.nEmbd, nEmbdKv));
    tensors.push(matrix(`${blk}.attn_v.weight`, o.nEmbd, nEmbdKv));
    tensors.push(matrix(`${blk}.attn_output.weight`, o.nEmbd, o.nEmbd));
    tensors.push(vector(`${blk}.ffn_norm.weight`, o.nEmbd));
    if (o.nExperts === 0) {
      tensors.push(matrix(`${blk}.ffn_gate.weight`, o.nEmbd, o.nFf));
      tensors.push(matrix(`${blk}.ffn_down.weight`, o.nFf, o.nEmbd));
      tensors.push(matrix(`${blk}.ffn_up.weight`, o.nEmbd, o.nFf));
      continue;
    }
    tensors.push(matrix(`${blk}.ffn_gate_inp.weight`, o.nEmbd, o.nExperts, GgmlType.F32, ROUTER_LOGIT_STD));
    for (const [projectionName, rowLength, rows] of [["gate", o.nEmbd, o.nFf], ["down", o.nFf, o.nEmbd], ["up", o.nEmbd, o.nFf]] as const) {
      const experts = Array.from({ length: o.nExperts }, (_, e) => matrix(`${blk}.ffn_${projectionName}.${e}.weight`, rowLength, rows));
      if (o.layout === "legacy") tensors.push(...experts);
      else tensors.push({ name: `${blk}.ffn_${projectionName}_exps.weight`, type: o.type, shape: [rowLength, rows, o.nExperts], parts: experts.flatMap((t) => t.parts) });
    }
  }
  return tensors;
}

/**
 * The values of GGUF tensor `name` of the model `options` describes, before quantization (the F32 model's exact
 * numbers). Works for either layout's names. Throws RangeError for a name the model does not have.
 * @example
 * ```ts
 * import { synthesizeTensor } from "mixtral-native/testing";
 * const router = synthesizeTensor({ nExperts: 8 }, "blk.0.ffn_gate_inp.weight"); // 8 × 256 floats, row by row
 * const upExps = synthesizeTensor({ nExperts: 8 }, "blk.0.ffn_up_exps.weight");               // 8 experts, one after another
 * const up3 = synthesizeTensor({ nExperts: 8, layout: "legacy" }, "blk.0.ffn_up.3.weight");   // the 4th eighth of upExps
 * ```
 */
export function synthesizeTensor(options: Omit<TestModelOptions, "path">, name: string): Float32Array {
  const resolved = resolveTestModelOptions(options);
  const tensor = plan(resolved).find((t) => t.name === name);
  if (tensor === undefined) throw new ArgumentRangeError(`name ${JSON.stringify(name)} is not a tensor of this test model`);
  const out = new Float32Array(tensor.parts.reduce((n, p) => n + p.rowLength * p.rows, 0));
  let offset = 0;
  for (const part of tensor.parts) {
    const values = out.subarray(offset, offset + part.rowLength * part.rows);
    fillStream(values, streamKey(resolved.seed, part.key), 0, part.center, part.amplitude);
    offset += values.length;
  }
  return out;
}

/** Floats generated per step: bounds the scratch memory of a build and how long the event loop waits. */
const CHUNK_VALUES = 1 << 20;

/** The bytes of one tensor, generated and quantized a chunk of whole rows at a time. */
async function tensorBytes(tensor: PlannedTensor, seed: number, scratch: Float32Array): Promise<Uint8Array> {
  const elements = tensor.shape.reduce((a, b) => a * b, 1);
  const out = new Uint8Array(ggmlByteLength(tensor.type, elements));
  let written = 0;
  for (const part of tensor.parts) {
    const key = streamKey(seed, part.key);
    const rowsPerChunk = Math.max(1, Math.floor(scratch.length / part.rowLength));
    for (let row = 0; row < part.rows; row += rowsPerChunk) {
      const values = scratch.subarray(0, Math.min(rowsPerChunk, part.rows - row) * part.rowLength);
      fillStream(values, key, row * part.rowLength, part.center, part.amplitude);
      // F32 bytes are the floats themselves (little-endian host, as x86-64 is).
      const bytes = tensor.type === GgmlType.F32
        ? new Uint8Array(values.buffer, values.byteOffset, values.byteLength)
        : quantize(tensor.type, values, part.rowLength);
      out.set(bytes, written);
      written += bytes.byteLength;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------------------------

/**
 * Writes a synthetic Mixtral-architecture (or, with `nExperts: 0`, dense Mistral) GGUF file to `options.path`.
 * Memory stays near the largest single tensor's bytes: tensors are generated one at a time as they are written.
 * @example
 * ```ts
 * import { GgmlType, Mixtral } from "mixtral-native";
 * import { createTestModel } from "mixtral-native/testing";
 * const { path } = await createTestModel({ path: "dense-q4.gguf", nExperts: 0, type: GgmlType.Q4_0, slidingWindow: 64 });
 * const model = await Mixtral.load(path);
 * ```
 */
export async function createTestModel(options: TestModelOptions): Promise<TestModelFile> {
  if (typeof options !== "object" || options === null) throw new ArgumentTypeError(`options must be an object; got ${describeValue(options)}`);
  const { path, ...rest } = options;
  if (typeof path !== "string" || path.length === 0) throw new ArgumentTypeError(`options.path must be a non-empty string; got ${describeValue(path)}`);
  const o = resolveTestModelOptions(rest);
  const vocab = await loadMistralV1Vocabulary();

  const writer = new GgufWriter();
  const u32 = (key: string, value: number) => writer.set(key, GgufValueType.UINT32, value);
  const f32 = (key: string, value: number) => writer.set(key, GgufValueType.FLOAT32, value);
  writer.set("general.architecture", GgufValueType.STRING, "llama");
  writer.set("general.name", GgufValueType.STRING, o.name);
  u32("general.file_type", LLAMA_FILE_TYPE[o.type]!);
  u32("general.quantization_version", 2);
  u32("llama.vocab_size", TEST_MODEL_VOCAB_SIZE);
  u32("llama.context_length", o.contextLength);
  u32("llama.embedding_length", o.nEmbd);
  u32("llama.block_count", o.nLayers);
  u32("llama.feed_forward_length", o.nFf);
  u32("llama.attention.head_count", o.nHeads);
  u32("llama.attention.head_count_kv", o.nHeadsKv);
  f32("llama.rope.freq_base", o.ropeFreqBase);
  u32("llama.rope.dimension_count", o.nEmbd / o.nHeads);
  f32("llama.attention.layer_norm_rms_epsilon", TEST_MODEL_RMS_EPS);
  if (o.nExperts > 0) {
    u32("llama.expert_count", o.nExperts);
    u32("llama.expert_used_count", o.nExpertsUsed);
  }
  if (o.slidingWindow !== undefined) u32("llama.attention.sliding_window", o.slidingWindow);

  writer.set("tokenizer.ggml.model", GgufValueType.STRING, "llama");
  writer.set("tokenizer.ggml.tokens", GgufValueType.ARRAY, vocab.tokens, GgufValueType.STRING);
  writer.set("tokenizer.ggml.scores", GgufValueType.ARRAY, vocab.scores, GgufValueType.FLOAT32);
  writer.set("tokenizer.ggml.token_type", GgufValueType.ARRAY, vocab.tokenTypes, GgufValueType.INT32);
  u32("tokenizer.ggml.bos_token_id", vocab.bosId);
  u32("tokenizer.ggml.eos_token_id", vocab.eosId);
  u32("tokenizer.ggml.unknown_token_id", vocab.unkId);
  writer.set("tokenizer.ggml.add_bos_token", GgufValueType.BOOL, true);
  writer.set("tokenizer.ggml.add_eos_token", GgufValueType.BOOL, false);
  writer.set("tokenizer.ggml.add_space_prefix", GgufValueType.BOOL, true);
  writer.set("tokenizer.chat_template", GgufValueType.STRING, MIXTRAL_INSTRUCT_CHAT_TEMPLATE);

  const tensors = plan(o);
  const longestRow = Math.max(...tensors.flatMap((t) => t.parts.map((p) => p.rowLength)));
  const scratch = new Float32Array(Math.max(CHUNK_VALUES, longestRow));
  for (const tensor of tensors) {
    writer.addTensor(tensor.name, tensor.type, tensor.shape, () => tensorBytes(tensor, o.seed, scratch));
  }
  await writer.write(path);
  return { path, options: o, tensorCount: tensors.length };
}

// ---------------------------------------------------------------------------------------------------------------
// The cache
// ---------------------------------------------------------------------------------------------------------------

/**
 * The default cache folder of {@link cachedTestModel}: `<package root>/.cache/models`.
 * @example
 * ```ts
 * import { rm } from "node:fs/promises";
 * import { DEFAULT_TEST_MODEL_CACHE_DIR } from "mixtral-native/testing";
 * await rm(DEFAULT_TEST_MODEL_CACHE_DIR, { recursive: true, force: true }); // rebuild every test model on next use
 * ```
 */
export const DEFAULT_TEST_MODEL_CACHE_DIR = join(packageRoot, ".cache", "models");

const building = new Map<string, Promise<string>>();

/**
 * The file name `cachedTestModel` uses for `options`: a hash of the resolved options and the format version.
 * Options that resolve alike (a default given or left out) share a name.
 * @example
 * ```ts
 * import { GgmlType } from "mixtral-native";
 * import { testModelCacheName } from "mixtral-native/testing";
 * testModelCacheName({ type: GgmlType.Q8_0 }); // "test-q8_0-" + 20 hex digits + ".gguf"
 * testModelCacheName({ nLayers: 2 }) === testModelCacheName({}); // true: 2 is the default
 * ```
 */
export function testModelCacheName(options: Omit<TestModelOptions, "path">): string {
  const o = resolveTestModelOptions(options);
  const fingerprint = JSON.stringify({ version: TEST_MODEL_FORMAT_VERSION, ...o, slidingWindow: o.slidingWindow ?? null });
  const hash = createHash("sha256").update(fingerprint).digest("hex").slice(0, 20);
  return `test-${GGML_TYPE_TRAITS[o.type].name.toLowerCase()}-${hash}.gguf`;
}

/**
 * Builds the test model `options` describes into `cacheDir` once and returns its path; later calls (in this or
 * any other process) find the file and return at once. Safe under concurrency: a file only ever appears whole
 * (written to a temporary name, then renamed), and two processes racing to build it write identical bytes.
 * @example
 * ```ts
 * import { Mixtral } from "mixtral-native";
 * import { cachedTestModel } from "mixtral-native/testing";
 * const model = await Mixtral.load(await cachedTestModel({ nLayers: 1 }));
 * const scratch = await cachedTestModel({ seed: 7 }, "/tmp/models"); // a cache folder of your own
 * ```
 */
export async function cachedTestModel(options: Omit<TestModelOptions, "path"> = {}, cacheDir = DEFAULT_TEST_MODEL_CACHE_DIR): Promise<string> {
  if (typeof options === "object" && options !== null && "path" in options) {
    throw new ArgumentTypeError("options.path is chosen by cachedTestModel; pass cacheDir instead");
  }
  if (typeof cacheDir !== "string" || cacheDir.length === 0) throw new ArgumentTypeError(`cacheDir must be a non-empty string; got ${describeValue(cacheDir)}`);
  const path = join(cacheDir, testModelCacheName(options));
  if (existsSync(path)) return path;
  let pending = building.get(path);
  if (pending === undefined) {
    pending = (async () => {
      await mkdir(cacheDir, { recursive: true });
      if (!existsSync(path)) await createTestModel({ ...options, path });
      return path;
    })().finally(() => building.delete(path));
    building.set(path, pending);
  }
  return pending;
}
