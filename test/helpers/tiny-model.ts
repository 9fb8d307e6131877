/**
 * Minimal valid Mixtral-layout (or dense) GGUF models for reader and validation tests: random weights, a fake
 * vocabulary, every hyperparameter key. A model is first built as a plain, mutable spec so that tests can break
 * one thing (a key, a shape, a type, a value) before it is written with GgufWriter.
 */
import { readFile, rm } from "node:fs/promises";

import { GgufWriter } from "../../lib/gguf/writer.js";
import { GGML_TYPE_TRAITS, GgmlType, GgufValueType, type GgufValue } from "../../lib/gguf/types.js";

export type TinyLayout = "merged" | "legacy" | "dense";

export interface TinyModelOptions {
  layout?: TinyLayout;
  nEmbd?: number;
  nLayers?: number;
  nHeads?: number;
  nHeadsKv?: number;
  nFf?: number;
  /** Ignored for the dense layout. */
  nExperts?: number;
  nExpertsUsed?: number;
  nVocab?: number;
  contextLength?: number;
  ropeTheta?: number;
  rmsEps?: number;
  slidingWindow?: number;
  /** general.file_type; omitted when undefined. */
  fileType?: number;
  alignment?: number;
  /** No output.weight: the model reuses token_embd. */
  tiedOutput?: boolean;
  /** Type of the attention and feed-forward matrices (F32, F16, BF16, Q8_0 or Q4_0). Default F32. */
  matrixType?: GgmlType;
  /** Per-tensor type overrides by full name, e.g. { "blk.0.attn_q.weight": GgmlType.Q8_0 }. */
  tensorTypes?: Readonly<Record<string, GgmlType>>;
  seed?: number;
}

export interface SpecKv {
  key: string;
  type: GgufValueType;
  value: GgufValue;
  elementType?: GgufValueType;
}

export interface SpecTensor {
  name: string;
  type: GgmlType;
  shape: number[];
  data: Uint8Array;
}

export interface TinyModelSpec {
  alignment: number;
  metadata: SpecKv[];
  tensors: SpecTensor[];
}

/** The defaults, exported so that tests can state expected values without repeating numbers. */
export const TINY_DEFAULTS = {
  layout: "merged" as TinyLayout,
  nEmbd: 32,
  nLayers: 2,
  nHeads: 4,
  nHeadsKv: 2,
  nFf: 64,
  nExperts: 4,
  nExpertsUsed: 2,
  nVocab: 300,
  contextLength: 256,
  ropeTheta: 10000,
  rmsEps: 1e-5,
  seed: 1,
};

// ============================================================================================== spec editing

export function findKv(spec: TinyModelSpec, key: string): SpecKv | undefined {
  return spec.metadata.find((kv) => kv.key === key);
}

/** Replaces the key's type and value in place, or appends it. */
export function setKv(spec: TinyModelSpec, key: string, type: GgufValueType, value: GgufValue, elementType?: GgufValueType): void {
  const kv = findKv(spec, key);
  if (kv) Object.assign(kv, { type, value, elementType });
  else spec.metadata.push({ key, type, value, elementType });
}

export function removeKv(spec: TinyModelSpec, key: string): void {
  const index = spec.metadata.findIndex((kv) => kv.key === key);
  if (index < 0) throw new Error(`no metadata key ${key} in the spec`);
  spec.metadata.splice(index, 1);
}

export function findTensor(spec: TinyModelSpec, name: string): SpecTensor {
  const tensor = spec.tensors.find((t) => t.name === name);
  if (!tensor) throw new Error(`no tensor ${name} in the spec`);
  return tensor;
}

export function removeTensor(spec: TinyModelSpec, name: string): void {
  spec.tensors.splice(spec.tensors.indexOf(findTensor(spec, name)), 1);
}

/** Gives the tensor a new type or shape, with fresh random data of the right size. */
export function reshapeTensor(spec: TinyModelSpec, name: string, shape: number[], type?: GgmlType, seed = 7): void {
  const tensor = findTensor(spec, name);
  tensor.shape = shape;
  tensor.type = type ?? tensor.type;
  tensor.data = randomTensorData(tensor.type, shape, mulberry32(seed), 0.1);
}

// ============================================================================================== writing

export async function writeSpec(spec: TinyModelSpec, path: string): Promise<void> {
  const writer = new GgufWriter({ alignment: spec.alignment });
  for (const kv of spec.metadata) writer.set(kv.key, kv.type, kv.value, kv.elementType);
  for (const tensor of spec.tensors) writer.addTensor(tensor.name, tensor.type, tensor.shape, tensor.data);
  await writer.write(path);
}

/** The file the spec describes, as bytes (written to `scratchPath` and removed again). */
export async function specToBytes(spec: TinyModelSpec, scratchPath: string): Promise<Uint8Array> {
  await writeSpec(spec, scratchPath);
  try {
    return new Uint8Array(await readFile(scratchPath));
  } finally {
    await rm(scratchPath, { force: true });
  }
}

export async function writeTinyModel(path: string, options: TinyModelOptions = {}): Promise<TinyModelSpec> {
  const spec = tinyModelSpec(options);
  await writeSpec(spec, path);
  return spec;
}

// ============================================================================================== the model

export function tinyModelSpec(options: TinyModelOptions = {}): TinyModelSpec {
  const o = { ...TINY_DEFAULTS, ...options };
  const dense = o.layout === "dense";
  const headDim = o.nEmbd / o.nHeads;
  const nKv = o.nHeadsKv * headDim;
  const random = mulberry32(o.seed);
  const metadata: SpecKv[] = [];
  const kv = (key: string, type: GgufValueType, value: GgufValue, elementType?: GgufValueType) =>
    metadata.push({ key, type, value, elementType });

  kv("general.architecture", GgufValueType.STRING, "llama");
  kv("general.name", GgufValueType.STRING, `tiny-${o.layout}`);
  if (o.fileType !== undefined) kv("general.file_type", GgufValueType.UINT32, o.fileType);
  kv("llama.context_length", GgufValueType.UINT32, o.contextLength);
  kv("llama.embedding_length", GgufValueType.UINT32, o.nEmbd);
  kv("llama.block_count", GgufValueType.UINT32, o.nLayers);
  kv("llama.feed_forward_length", GgufValueType.UINT32, o.nFf);
  kv("llama.rope.dimension_count", GgufValueType.UINT32, headDim);
  kv("llama.attention.head_count", GgufValueType.UINT32, o.nHeads);
  kv("llama.attention.head_count_kv", GgufValueType.UINT32, o.nHeadsKv);
  kv("llama.attention.layer_norm_rms_epsilon", GgufValueType.FLOAT32, o.rmsEps);
  kv("llama.rope.freq_base", GgufValueType.FLOAT32, o.ropeTheta);
  if (!dense) {
    kv("llama.expert_count", GgufValueType.UINT32, o.nExperts);
    kv("llama.expert_used_count", GgufValueType.UINT32, o.nExpertsUsed);
  }
  if (o.slidingWindow !== undefined) kv("llama.attention.sliding_window", GgufValueType.UINT32, o.slidingWindow);
  kv("llama.vocab_size", GgufValueType.UINT32, o.nVocab);
  const { tokens, scores, tokenTypes } = fakeVocabulary(o.nVocab);
  kv("tokenizer.ggml.model", GgufValueType.STRING, "llama");
  kv("tokenizer.ggml.tokens", GgufValueType.ARRAY, tokens, GgufValueType.STRING);
  kv("tokenizer.ggml.scores", GgufValueType.ARRAY, scores, GgufValueType.FLOAT32);
  kv("tokenizer.ggml.token_type", GgufValueType.ARRAY, tokenTypes, GgufValueType.INT32);
  kv("tokenizer.ggml.bos_token_id", GgufValueType.UINT32, 1);
  kv("tokenizer.ggml.eos_token_id", GgufValueType.UINT32, 2);
  kv("tokenizer.ggml.unknown_token_id", GgufValueType.UINT32, 0);
  kv("tokenizer.ggml.add_bos_token", GgufValueType.BOOL, true);

  const tensors: SpecTensor[] = [];
  const add = (name: string, defaultType: GgmlType, shape: number[], scale = 0.1) => {
    const type = o.tensorTypes?.[name] ?? defaultType;
    tensors.push({ name, type, shape, data: randomTensorData(type, shape, random, scale) });
  };
  const addNorm = (name: string) => {
    const values = new Float32Array(o.nEmbd).map(() => 1 + (random() - 0.5) * 0.1);
    const type = o.tensorTypes?.[name] ?? GgmlType.F32;
    tensors.push({ name, type, shape: [o.nEmbd], data: type === GgmlType.F32 ? bytesOf(values) : randomTensorData(type, [o.nEmbd], random, 1) });
  };
  const matrix = o.matrixType ?? GgmlType.F32;

  add("token_embd.weight", GgmlType.F32, [o.nEmbd, o.nVocab], 1);
  addNorm("output_norm.weight");
  if (!o.tiedOutput) add("output.weight", GgmlType.F32, [o.nEmbd, o.nVocab]);
  for (let layer = 0; layer < o.nLayers; layer++) {
    const blk = (suffix: string) => `blk.${layer}.${suffix}`;
    addNorm(blk("attn_norm.weight"));
    add(blk("attn_q.weight"), matrix, [o.nEmbd, o.nEmbd]);
    add(blk("attn_k.weight"), matrix, [o.nEmbd, nKv]);
    add(blk("attn_v.weight"), matrix, [o.nEmbd, nKv]);
    add(blk("attn_output.weight"), matrix, [o.nEmbd, o.nEmbd]);
    addNorm(blk("ffn_norm.weight"));
    if (dense) {
      add(blk("ffn_gate.weight"), matrix, [o.nEmbd, o.nFf]);
      add(blk("ffn_up.weight"), matrix, [o.nEmbd, o.nFf]);
      add(blk("ffn_down.weight"), matrix, [o.nFf, o.nEmbd]);
      continue;
    }
    add(blk("ffn_gate_inp.weight"), GgmlType.F32, [o.nEmbd, o.nExperts]);
    if (o.layout === "merged") {
      add(blk("ffn_gate_exps.weight"), matrix, [o.nEmbd, o.nFf, o.nExperts]);
      add(blk("ffn_up_exps.weight"), matrix, [o.nEmbd, o.nFf, o.nExperts]);
      add(blk("ffn_down_exps.weight"), matrix, [o.nFf, o.nEmbd, o.nExperts]);
    } else {
      for (const [part, shape] of [["ffn_gate", [o.nEmbd, o.nFf]], ["ffn_up", [o.nEmbd, o.nFf]], ["ffn_down", [o.nFf, o.nEmbd]]] as const) {
        for (let e = 0; e < o.nExperts; e++) add(blk(`${part}.${e}.weight`), matrix, [...shape]);
      }
    }
  }
  return { alignment: o.alignment ?? 32, metadata, tensors };
}

/** "<unk>", "<s>", "</s>" and then made-up words; scores fall with the id. */
export function fakeVocabulary(nVocab: number): { tokens: string[]; scores: Float32Array; tokenTypes: Int32Array } {
  const specials = ["<unk>", "<s>", "</s>"];
  const tokens = Array.from({ length: nVocab }, (_, i) => specials[i] ?? `\u2581tok${i}`);
  const scores = Float32Array.from(tokens, (_, i) => (i < specials.length ? 0 : -i));
  const tokenTypes = Int32Array.from(tokens, (_, i) => (i === 0 ? 2 : i < specials.length ? 3 : 1));
  return { tokens, scores, tokenTypes };
}

// ============================================================================================== tensor data

export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function bytesOf(array: Float32Array | Uint16Array): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

// fp16 bits of 2^-6 and 2^-7: block scales that are exact and finite.
const FP16_SCALE_Q4_0 = 0x2400;
const FP16_SCALE_Q8_0 = 0x2000;

/** Finite random values of `type` in roughly [-scale, scale]. */
export function randomTensorData(type: GgmlType, shape: readonly number[], random: () => number, scale: number): Uint8Array {
  const count = shape.reduce((a, b) => a * b, 1);
  switch (type) {
    case GgmlType.F32:
      return bytesOf(Float32Array.from({ length: count }, () => (random() * 2 - 1) * scale));
    case GgmlType.F16:
      // sign, exponent 9..13 (2^-6 .. 2^-2), random mantissa
      return bytesOf(Uint16Array.from({ length: count }, () =>
        ((random() < 0.5 ? 1 : 0) << 15) | ((9 + Math.floor(random() * 5)) << 10) | Math.floor(random() * 1024)));
    case GgmlType.BF16: {
      const f32 = Float32Array.from({ length: count }, () => (random() * 2 - 1) * scale);
      const words = new Uint16Array(f32.buffer);
      return bytesOf(Uint16Array.from({ length: count }, (_, i) => words[2 * i + 1]));
    }
    case GgmlType.Q8_0:
    case GgmlType.Q4_0: {
      const traits = GGML_TYPE_TRAITS[type];
      const bytes = new Uint8Array((count / traits.blockSize) * traits.blockBytes);
      const view = new DataView(bytes.buffer);
      for (let at = 0; at < bytes.length; at += traits.blockBytes) {
        view.setUint16(at, type === GgmlType.Q8_0 ? FP16_SCALE_Q8_0 : FP16_SCALE_Q4_0, true);
        for (let j = 2; j < traits.blockBytes; j++) bytes[at + j] = Math.floor(random() * 256);
      }
      return bytes;
    }
    default:
      throw new Error(`tiny models do not generate ${GGML_TYPE_TRAITS[type]?.name ?? type} data`);
  }
}
