/**
 * The hostile-file catalogue (REFERENCE.md "Hostile files"): each case starts from a valid tiny model, breaks
 * one thing through the spec or by patching the written bytes, and names the code the reader must give and words
 * its message must contain. Shared by test/11.gguf.hostile.test.ts and `npm run test:asan` / `npm run fuzz`
 * (scripts/gguf-corpus.mjs compiles this file and writes the corpus with writeGgufCorpus).
 */
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";

import { GgmlType, GgufValueType } from "../../lib/gguf/types.js";
import { everyTypeSpec } from "./every-type.js";
import {
  concatBytes, expectedCodeForCut, fieldBytes, ggufLayout, rawGguf, kvLayout, setF32, setText, setU16, setU32, setU64, setU8, tensorLayout, type GgufLayout,
} from "./gguf-layout.js";
import {
  findKv, removeKv, removeTensor, reshapeTensor, setKv, specToBytes, tinyModelSpec, type TinyModelOptions, type TinyModelSpec,
} from "./tiny-model.js";

/** The model every case breaks: one MoE layer, Q8_0 / Q4_0 / F16 tensors for the NaN-in-scale cases. */
export const HOSTILE_BASE: TinyModelOptions = {
  nEmbd: 32, nLayers: 1, nHeads: 4, nHeadsKv: 2, nFf: 32, nExperts: 2, nExpertsUsed: 1, nVocab: 40,
  tensorTypes: {
    "blk.0.attn_q.weight": GgmlType.Q8_0,
    "blk.0.attn_k.weight": GgmlType.Q4_0,
    "blk.0.ffn_gate_inp.weight": GgmlType.F16,
  },
};
export const HOSTILE_VOCAB = 40;

export interface HostileCase {
  name: string;
  /** The error code of readGguf/GgufFile::open with verifyTensorData (level "gguf") or of bindModel ("model"). */
  code: string;
  level: "gguf" | "model";
  /** Substrings the error message must contain: the field or tensor and the bad value. */
  mentions: string[];
  build(scratchDir: string): Promise<Uint8Array>;
}

interface CaseRecipe {
  /** Default: "model" for MODEL_* codes, else "gguf". Metadata type and range errors found by bindModel say "model". */
  level?: "gguf" | "model";
  options?: TinyModelOptions;
  /** A hand-built file instead of a tiny model (for what GgufWriter cannot write, e.g. nested arrays). */
  raw?: () => Uint8Array;
  spec?: (spec: TinyModelSpec) => void;
  patch?: (bytes: Uint8Array, layout: GgufLayout) => Uint8Array | void;
}

function hostile(name: string, code: string, mentions: string[], recipe: CaseRecipe): HostileCase {
  return {
    name,
    code,
    level: recipe.level ?? (code.startsWith("MODEL_") ? "model" : "gguf"),
    mentions,
    async build(scratchDir) {
      if (recipe.raw) return recipe.raw();
      const spec = tinyModelSpec({ ...HOSTILE_BASE, ...recipe.options });
      recipe.spec?.(spec);
      const bytes = await specToBytes(spec, join(scratchDir, `${name}.${process.pid}.spec.gguf`));
      return recipe.patch?.(bytes, ggufLayout(bytes)) ?? bytes;
    },
  };
}

const LONG_NAME = `blk.0.${"x".repeat(63 - "blk.0.".length)}`;  // the writer's longest name: 63 bytes
const elementAt = (layout: GgufLayout, name: string, index: number, bytesEach: number) =>
  tensorLayout(layout, name).dataAt + index * bytesEach;

/** Every case, at least one per item of the hostile list; names are unique and file-name safe. */
export function hostileCases(): HostileCase[] {
  const T = GgufValueType;
  return [
    // ---- header
    hostile("bad-magic", "GGUF_BAD_MAGIC", ['"GGML"'], { patch: (b) => setText(b, 0, "GGML") }),
    hostile("version-0", "GGUF_BAD_VERSION", ["version 0"], { patch: (b) => setU32(b, 4, 0) }),
    hostile("version-1", "GGUF_BAD_VERSION", ["version 1"], { patch: (b) => setU32(b, 4, 1) }),
    hostile("version-4", "GGUF_BAD_VERSION", ["version 4"], { patch: (b) => setU32(b, 4, 4) }),
    hostile("version-big-endian", "GGUF_BAD_VERSION", ["big-endian"], { patch: (b) => setU32(b, 4, 0x03000000) }),
    // ---- counts and lengths: 2^63 or more, or more than the bytes left
    hostile("n-tensors-2pow63", "GGUF_BAD_COUNT", ["n_tensors", "9223372036854775808"], { patch: (b) => setU64(b, 8, 2n ** 63n) }),
    hostile("n-kv-max", "GGUF_BAD_COUNT", ["n_kv", "18446744073709551615"], { patch: (b) => setU64(b, 16, 2n ** 64n - 1n) }),
    hostile("n-kv-beyond-bytes", "GGUF_BAD_COUNT", ["n_kv = 1000000"], { patch: (b) => setU64(b, 16, 1_000_000) }),
    hostile("n-tensors-beyond-bytes", "GGUF_BAD_COUNT", ["n_tensors = 1000000"], { patch: (b) => setU64(b, 8, 1_000_000) }),
    hostile("array-count-2pow63", "GGUF_BAD_COUNT", ["tokenizer.ggml.tokens", "9223372036854775808"], {
      patch: (b, l) => setU64(b, kvLayout(l, "tokenizer.ggml.tokens").countAt!, 2n ** 63n),
    }),
    hostile("array-count-beyond-bytes", "GGUF_BAD_COUNT", ["tokenizer.ggml.scores", "10000000"], {
      patch: (b, l) => setU64(b, kvLayout(l, "tokenizer.ggml.scores").countAt!, 10_000_000),
    }),
    hostile("key-length-2pow63", "GGUF_BAD_COUNT", ["metadata key #0", "9223372036854775808"], {
      patch: (b) => setU64(b, 24, 2n ** 63n),
    }),
    hostile("string-length-beyond-bytes", "GGUF_BAD_COUNT", ["general.name", "1000000000"], {
      patch: (b, l) => setU64(b, kvLayout(l, "general.name").valueAt, 1_000_000_000),
    }),
    hostile("tensor-name-length-max", "GGUF_BAD_COUNT", ["tensor #0", "18446744073709551615"], {
      patch: (b, l) => setU64(b, l.tensors[0].at, 2n ** 64n - 1n),
    }),
    // ---- metadata types and values
    hostile("unknown-value-type", "GGUF_BAD_VALUE_TYPE", ["general.name", "13"], {
      patch: (b, l) => setU32(b, kvLayout(l, "general.name").typeAt, 13),
    }),
    hostile("unknown-array-element-type", "GGUF_BAD_VALUE_TYPE", ["tokenizer.ggml.tokens", "99"], {
      patch: (b, l) => setU32(b, kvLayout(l, "tokenizer.ggml.tokens").elementTypeAt!, 99),
    }),
    hostile("bool-byte-2", "GGUF_BAD_VALUE", ["tokenizer.ggml.add_bos_token", "2"], {
      patch: (b, l) => setU8(b, kvLayout(l, "tokenizer.ggml.add_bos_token").valueAt, 2),
    }),
    hostile("key-invalid-utf8", "GGUF_BAD_STRING", ["metadata key #1", "UTF-8"], {
      patch: (b, l) => setText(b, kvLayout(l, "general.name").at + 8, Uint8Array.of(0xc3, 0x28)),
    }),
    hostile("key-empty", "GGUF_BAD_STRING", ["metadata key #1", "empty"], {
      patch: (b, l) => setU64(b, kvLayout(l, "general.name").at, 0),
    }),
    hostile("duplicate-key", "GGUF_DUPLICATE_KEY", ["general.dup1"], {
      spec: (s) => {
        setKv(s, "general.dup1", T.STRING, "first");
        setKv(s, "general.dup2", T.STRING, "second");
      },
      patch: (b, l) => setText(b, kvLayout(l, "general.dup2").at + 8, "general.dup1"),
    }),
    hostile("alignment-0", "GGUF_BAD_ALIGNMENT", ["general.alignment", "= 0"], {
      spec: (s) => setKv(s, "general.alignment", T.UINT32, 0),
    }),
    hostile("alignment-48", "GGUF_BAD_ALIGNMENT", ["general.alignment", "48", "power of two"], {
      spec: (s) => setKv(s, "general.alignment", T.UINT32, 48),
    }),
    hostile("alignment-wrong-type", "GGUF_BAD_ALIGNMENT", ["general.alignment", "UINT64"], {
      spec: (s) => setKv(s, "general.alignment", T.UINT64, 32n),
    }),
    hostile("arrays-nested-5-deep", "GGUF_BAD_VALUE_TYPE", ["test.nested", "deeper than 4"], {
      raw: () => rawGguf([{ key: "test.nested", type: T.ARRAY, value: concatBytes(
        ...Array.from({ length: 4 }, () => fieldBytes(["u32", T.ARRAY], ["u64", 1])),
        fieldBytes(["u32", T.UINT32], ["u64", 0]),
      ) }]),
    }),
    hostile("nested-arrays-over-cap", "GGUF_BAD_COUNT", ["test.nested", "4096 nested arrays"], {
      raw: () => rawGguf([{ key: "test.nested", type: T.ARRAY, value: concatBytes(
        fieldBytes(["u32", T.ARRAY], ["u64", 4097]),
        ...Array.from({ length: 4097 }, () => fieldBytes(["u32", T.UINT8], ["u64", 0])),
      ) }]),
    }),
    // ---- tensor infos
    hostile("tensor-name-64-bytes", "GGUF_BAD_NAME", ["64 bytes", "shorter than 64"], {
      spec: (s) => s.tensors.push({ name: LONG_NAME, type: GgmlType.F32, shape: [1], data: new Uint8Array(4) }),
      patch: (b, l) => setU64(b, tensorLayout(l, LONG_NAME).at, 64),
    }),
    hostile("tensor-name-empty", "GGUF_BAD_NAME", ["tensor #0", "empty"], { patch: (b, l) => setU64(b, l.tensors[0].at, 0) }),
    hostile("tensor-name-invalid-utf8", "GGUF_BAD_STRING", ["tensor #0", "UTF-8"], {
      patch: (b, l) => setU8(b, l.tensors[0].at + 8, 0xff),
    }),
    hostile("duplicate-tensor", "GGUF_DUPLICATE_TENSOR", ["blk.0.attn_k.weight"], {
      patch: (b, l) => setText(b, tensorLayout(l, "blk.0.attn_v.weight").at + 8, "blk.0.attn_k.weight"),
    }),
    hostile("n-dims-0", "GGUF_BAD_DIMS", ["output_norm.weight", "n_dims = 0"], {
      patch: (b, l) => setU32(b, tensorLayout(l, "output_norm.weight").nDimsAt, 0),
    }),
    hostile("n-dims-5", "GGUF_BAD_DIMS", ["output_norm.weight", "n_dims = 5"], {
      patch: (b, l) => setU32(b, tensorLayout(l, "output_norm.weight").nDimsAt, 5),
    }),
    hostile("dimension-0", "GGUF_BAD_SHAPE", ["token_embd.weight", "[32, 0]"], {
      patch: (b, l) => setU64(b, tensorLayout(l, "token_embd.weight").neAt[1], 0),
    }),
    hostile("shape-overflows-int64", "GGUF_BAD_SHAPE", ["token_embd.weight", "[4294967296, 4294967296]", "2^63"], {
      patch: (b, l) => tensorLayout(l, "token_embd.weight").neAt.forEach((at) => setU64(b, at, 2n ** 32n)),
    }),
    hostile("shape-2pow63-elements", "GGUF_BAD_SHAPE", ["token_embd.weight", "2^63"], {
      patch: (b, l) => {
        const { neAt } = tensorLayout(l, "token_embd.weight");
        setU64(b, neAt[0], 2n ** 31n);
        setU64(b, neAt[1], 2n ** 32n);
      },
    }),
    hostile("shape-bytes-overflow", "GGUF_BAD_SHAPE", ["token_embd.weight", "2^64 bytes"], {
      patch: (b, l) => tensorLayout(l, "token_embd.weight").neAt.forEach((at) => setU64(b, at, 2n ** 31n)),
    }),
    hostile("unknown-ggml-type-4", "GGUF_BAD_TENSOR_TYPE", ["token_embd.weight", "type id 4"], {
      patch: (b, l) => setU32(b, tensorLayout(l, "token_embd.weight").typeAt, 4),
    }),
    hostile("unknown-ggml-type-1000", "GGUF_BAD_TENSOR_TYPE", ["output.weight", "type id 1000"], {
      patch: (b, l) => setU32(b, tensorLayout(l, "output.weight").typeAt, 1000),
    }),
    hostile("row-not-whole-blocks", "GGUF_BAD_BLOCK", ["blk.0.attn_q.weight", "ne[0] = 48", "Q8_0"], {
      patch: (b, l) => setU64(b, tensorLayout(l, "blk.0.attn_q.weight").neAt[0], 48),
    }),
    // ---- tensor offsets
    hostile("offset-past-eof", "GGUF_BAD_OFFSET", ["blk.0.ffn_down_exps.weight", "1099511627776", "past the end"], {
      patch: (b, l) => setU64(b, tensorLayout(l, "blk.0.ffn_down_exps.weight").offsetAt, 2n ** 40n),
    }),
    hostile("offset-wraps", "GGUF_BAD_OFFSET", ["output_norm.weight", "wraps"], {
      patch: (b, l) => setU64(b, tensorLayout(l, "output_norm.weight").offsetAt, 2n ** 64n - 32n),
    }),
    hostile("offset-misaligned", "GGUF_BAD_OFFSET", ["output_norm.weight", "alignment 32"], {
      patch: (b, l) => {
        const tensor = tensorLayout(l, "output_norm.weight");
        setU64(b, tensor.offsetAt, tensor.offset + 4);
      },
    }),
    hostile("overlapping-tensors", "GGUF_OVERLAP", ["output.weight", "token_embd.weight"], {
      patch: (b, l) => {
        const embd = tensorLayout(l, "token_embd.weight");
        setU64(b, tensorLayout(l, "output.weight").offsetAt, embd.offset + 64);
      },
    }),
    hostile("truncated-in-tensor-data", "GGUF_TRUNCATED", ["blk.0.ffn_down_exps.weight", "truncated"], {
      patch: (b) => b.slice(0, b.length - 10),
    }),
    // ---- NaN / Inf (verifyTensorData)
    hostile("nan-in-f32-weight", "GGUF_NAN", ["token_embd.weight", "element 5", "NaN"], {
      patch: (b, l) => setF32(b, elementAt(l, "token_embd.weight", 5, 4), NaN),
    }),
    hostile("inf-in-f32-norm", "GGUF_NAN", ["output_norm.weight", "element 3", "infinite"], {
      patch: (b, l) => setF32(b, elementAt(l, "output_norm.weight", 3, 4), -Infinity),
    }),
    hostile("inf-in-f16-router", "GGUF_NAN", ["blk.0.ffn_gate_inp.weight", "element 2", "infinite"], {
      patch: (b, l) => setU16(b, elementAt(l, "blk.0.ffn_gate_inp.weight", 2, 2), 0x7c00),
    }),
    hostile("nan-in-q8_0-scale", "GGUF_NAN", ["blk.0.attn_q.weight", "block 1 scale is NaN"], {
      patch: (b, l) => setU16(b, elementAt(l, "blk.0.attn_q.weight", 1, 34), 0x7e00),
    }),
    hostile("inf-in-q4_0-scale", "GGUF_NAN", ["blk.0.attn_k.weight", "block 0 scale is infinite"], {
      patch: (b, l) => setU16(b, elementAt(l, "blk.0.attn_k.weight", 0, 18), 0x7c00),
    }),
    // ---- model level
    hostile("architecture-gpt2", "MODEL_UNSUPPORTED_ARCH", ['"gpt2"'], {
      spec: (s) => setKv(s, "general.architecture", T.STRING, "gpt2"),
    }),
    hostile("missing-embedding-length", "MODEL_MISSING_KEY", ["llama.embedding_length"], {
      spec: (s) => removeKv(s, "llama.embedding_length"),
    }),
    hostile("missing-tokens", "MODEL_MISSING_KEY", ["tokenizer.ggml.tokens"], {
      spec: (s) => ["tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type"].forEach((k) => removeKv(s, k)),
    }),
    hostile("missing-expert-tensor", "MODEL_MISSING_TENSOR", ["blk.0.ffn_up_exps.weight"], {
      spec: (s) => removeTensor(s, "blk.0.ffn_up_exps.weight"),
    }),
    hostile("block-count-as-string", "GGUF_WRONG_TYPE", ["llama.block_count", "STRING"], {
      level: "model",
      spec: (s) => setKv(s, "llama.block_count", T.STRING, "1"),
    }),
    hostile("context-length-negative", "GGUF_BAD_VALUE", ["llama.context_length", "-5"], {
      level: "model",
      spec: (s) => setKv(s, "llama.context_length", T.INT32, -5),
    }),
    hostile("block-count-0", "MODEL_BAD_HPARAM", ["llama.block_count", "at least 1"], {
      spec: (s) => setKv(s, "llama.block_count", T.UINT32, 0),
    }),
    hostile("rms-eps-negative", "MODEL_BAD_HPARAM", ["layer_norm_rms_epsilon", "positive"], {
      spec: (s) => setKv(s, "llama.attention.layer_norm_rms_epsilon", T.FLOAT32, -1e-5),
    }),
    hostile("rope-dims-odd", "MODEL_BAD_HPARAM", ["llama.rope.dimension_count", "7"], {
      spec: (s) => setKv(s, "llama.rope.dimension_count", T.UINT32, 7),
    }),
    hostile("expert-used-above-count", "MODEL_BAD_EXPERT_COUNT", ["expert_used_count = 3", "expert_count = 2"], {
      spec: (s) => setKv(s, "llama.expert_used_count", T.UINT32, 3),
    }),
    hostile("expert-used-0", "MODEL_BAD_EXPERT_COUNT", ["expert_used_count = 0"], {
      spec: (s) => setKv(s, "llama.expert_used_count", T.UINT32, 0),
    }),
    hostile("expert-count-above-max", "MODEL_BAD_EXPERT_COUNT", ["expert_count = 257", "256"], {
      spec: (s) => setKv(s, "llama.expert_count", T.UINT32, 257),
    }),
    hostile("heads-not-multiple-of-kv", "MODEL_BAD_HEAD_COUNT", ["head_count = 4", "head_count_kv = 3"], {
      spec: (s) => setKv(s, "llama.attention.head_count_kv", T.UINT32, 3),
    }),
    hostile("embedding-not-multiple-of-heads", "MODEL_BAD_HEAD_COUNT", ["embedding_length = 32", "head_count = 5"], {
      spec: (s) => {
        setKv(s, "llama.attention.head_count", T.UINT32, 5);
        setKv(s, "llama.attention.head_count_kv", T.UINT32, 5);
      },
    }),
    hostile("bos-outside-vocab", "MODEL_BAD_TOKEN_ID", ["bos_token_id = 40", "40 tokens"], {
      spec: (s) => setKv(s, "tokenizer.ggml.bos_token_id", T.UINT32, HOSTILE_VOCAB),
    }),
    hostile("eos-outside-vocab", "MODEL_BAD_TOKEN_ID", ["eos_token_id = 1000"], {
      spec: (s) => setKv(s, "tokenizer.ggml.eos_token_id", T.UINT32, 1000),
    }),
    hostile("scores-as-uint8", "GGUF_WRONG_TYPE", ["tokenizer.ggml.scores", "ARRAY of UINT8", "FLOAT32"], {
      level: "model",
      spec: (s) => setKv(s, "tokenizer.ggml.scores", T.ARRAY, new Uint8Array(HOSTILE_VOCAB), T.UINT8),
    }),
    hostile("tokens-as-int32", "GGUF_WRONG_TYPE", ["tokenizer.ggml.tokens", "ARRAY of INT32"], {
      level: "model",
      spec: (s) => setKv(s, "tokenizer.ggml.tokens", T.ARRAY, new Int32Array(HOSTILE_VOCAB), T.INT32),
    }),
    hostile("scores-shorter-than-tokens", "MODEL_BAD_VOCAB", ["tokenizer.ggml.scores", "39 elements", "40"], {
      spec: (s) => setKv(s, "tokenizer.ggml.scores", T.ARRAY, new Float32Array(HOSTILE_VOCAB - 1), T.FLOAT32),
    }),
    hostile("token-type-unknown", "MODEL_BAD_VOCAB", ["token_type of token 5", "7"], {
      spec: (s) => ((findKv(s, "tokenizer.ggml.token_type")!.value as Int32Array)[5] = 7),
    }),
    hostile("vocab-size-disagrees", "MODEL_BAD_VOCAB", ["llama.vocab_size = 41", "40 tokens"], {
      spec: (s) => setKv(s, "llama.vocab_size", T.UINT32, HOSTILE_VOCAB + 1),
    }),
    hostile("attn-k-shape-mismatch", "MODEL_SHAPE_MISMATCH", ["blk.0.attn_k.weight", "[32, 32]", "expected [32, 16]"], {
      spec: (s) => reshapeTensor(s, "blk.0.attn_k.weight", [32, 32]),
    }),
    hostile("token-embd-rows-mismatch", "MODEL_SHAPE_MISMATCH", ["token_embd.weight", "[32, 41]", "expected [32, 40]"], {
      spec: (s) => reshapeTensor(s, "token_embd.weight", [32, HOSTILE_VOCAB + 1]),
    }),
    hostile("expert-dim-mismatch", "MODEL_SHAPE_MISMATCH", ["blk.0.ffn_down_exps.weight", "[32, 32, 3]", "expected [32, 32, 2]"], {
      spec: (s) => reshapeTensor(s, "blk.0.ffn_down_exps.weight", [32, 32, 3]),
    }),
    hostile("norm-not-f32", "MODEL_BAD_TENSOR_TYPE", ["blk.0.attn_norm.weight", "F16", "F32"], {
      spec: (s) => reshapeTensor(s, "blk.0.attn_norm.weight", [32], GgmlType.F16),
    }),
    hostile("legacy-experts-mixed-types", "MODEL_BAD_TENSOR_TYPE", ["blk.0.ffn_down.1.weight", "Q8_0", "blk.0.ffn_down.0.weight"], {
      options: { layout: "legacy" },
      spec: (s) => reshapeTensor(s, "blk.0.ffn_down.1.weight", [32, 32], GgmlType.Q8_0),
    }),
  ];
}

/** Tiny models of each layout that must bind: the corpus's "OK" files. */
export function validModelOptions(): Record<string, TinyModelOptions> {
  return {
    "valid-merged": HOSTILE_BASE,
    "valid-legacy": { ...HOSTILE_BASE, layout: "legacy" },
    "valid-dense": { ...HOSTILE_BASE, layout: "dense" },
    "valid-tied-output-align-64": { ...HOSTILE_BASE, tiedOutput: true, alignment: 64, slidingWindow: 16 },
  };
}

export interface CorpusEntry {
  file: string;
  /** Expected code of GgufFile::open(verifyTensorData) followed by bindModel; "OK" when both succeed. */
  code: string;
}

/**
 * Writes the hostile cases, the valid models and the every-type file cut at every byte of its header, metadata
 * and tensor infos (plus a few cuts in its tensor data) into `dir`, with manifest.tsv (file, expected code).
 */
export async function writeGgufCorpus(dir: string): Promise<CorpusEntry[]> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const entries: CorpusEntry[] = [];
  for (const c of hostileCases()) {
    const file = `hostile-${c.name}.gguf`;
    await writeFile(join(dir, file), await c.build(dir));
    entries.push({ file, code: c.code });
  }
  for (const [name, options] of Object.entries(validModelOptions())) {
    const file = `${name}.gguf`;
    await writeFile(join(dir, file), await specToBytes(tinyModelSpec(options), join(dir, `${file}.spec`)));
    entries.push({ file, code: "OK" });
  }
  for (const { length, code, bytes } of await everyTypeTruncations(dir)) {
    const file = `truncated-${String(length).padStart(5, "0")}.gguf`;
    await writeFile(join(dir, file), bytes);
    entries.push({ file, code });
  }
  await writeFile(join(dir, "manifest.tsv"), entries.map((e) => `${e.file}\t${e.code}\n`).join(""));
  return entries;
}

export interface Truncation {
  length: number;
  code: string;
  bytes: Uint8Array;
}

/**
 * The every-type file cut at each length below its data offset and at a few lengths inside its tensor data,
 * each with the code gguf-layout.ts's model of the reader's checks predicts.
 */
export async function everyTypeTruncations(scratchDir: string): Promise<Truncation[]> {
  const whole = await specToBytes(everyTypeSpec(), join(scratchDir, `every-type.${process.pid}.gguf`));
  const layout = ggufLayout(whole);
  const lengths = Array.from({ length: layout.dataOffset }, (_, i) => i);
  for (const tensor of layout.tensors) lengths.push(tensor.dataAt + 1, tensor.dataAt + tensor.byteLength - 1);
  return lengths.map((length) => ({ length, code: expectedCodeForCut(layout, length), bytes: whole.subarray(0, length) }));
}
