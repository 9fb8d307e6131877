/**
 * The float64 reference forward pass of Mixtral (and the dense Mistral/Llama layout), in the spirit of llama2.c's
 * run.c: one file, read top to bottom, no tricks. It follows REFERENCE.md "Forward pass" line by line and is the
 * test oracle wherever llama.cpp cannot be one (the sliding window, the legacy expert layout).
 *
 * Weights are read from the GGUF file with readGguf and expanded with dequantize(), so they are exactly the
 * numbers in the file (as float32); all arithmetic is in float64. The KV cache holds every position, and the
 * sliding window is applied in the attention loop itself, so it checks the engine's rolling buffer without
 * sharing its idea.
 *
 * @example
 * ```ts
 * const model = await loadReferenceModel(path);
 * const distributions = teacherForcedDistributions(model, [1, 22557, 1526]);
 * ```
 */
import { open } from "node:fs/promises";

import { dequantize } from "../../lib/gguf/quantize.js";
import { readGguf, type GgufFileInfo } from "../../lib/gguf/reader.js";

// ================================================================================================================
// Model: hyperparameters and weights
// ================================================================================================================

export interface ReferenceConfig {
  nVocab: number;
  nEmbd: number;
  nLayers: number;
  nHeads: number;
  nHeadsKv: number;
  headDim: number;
  /** Hidden size of the FFN (of each expert). */
  nFf: number;
  /** 0 for a dense model. */
  nExperts: number;
  nExpertsUsed: number;
  ropeFreqBase: number;
  rmsEps: number;
  contextLength: number;
  /** From `llama.attention.sliding_window`; null for full causal attention. */
  slidingWindow: number | null;
}

/** One SwiGLU FFN. A matrix "(rows, cols)" is stored row-major: row r is `cols` contiguous values. */
interface FfnWeights {
  gate: Float32Array; // (nFf, nEmbd)
  up: Float32Array; // (nFf, nEmbd)
  down: Float32Array; // (nEmbd, nFf)
}

interface LayerWeights {
  attnNorm: Float32Array; // (nEmbd,)
  wq: Float32Array; // (nHeads·headDim, nEmbd)
  wk: Float32Array; // (nHeadsKv·headDim, nEmbd)
  wv: Float32Array; // (nHeadsKv·headDim, nEmbd)
  wo: Float32Array; // (nEmbd, nHeads·headDim)
  ffnNorm: Float32Array; // (nEmbd,)
  router: Float32Array | null; // (nExperts, nEmbd); null for a dense model
  /** nExperts FFNs, or the one dense FFN. */
  ffns: FfnWeights[];
}

export interface ReferenceModel {
  config: ReferenceConfig;
  tokenEmbd: Float32Array; // (nVocab, nEmbd)
  outputNorm: Float32Array; // (nEmbd,)
  output: Float32Array; // (nVocab, nEmbd); token_embd when the file has no output.weight
  layers: LayerWeights[];
}

function metadataNumber(file: GgufFileInfo, key: string, fallback?: number): number {
  const entry = file.metadata.get(key);
  if (entry === undefined) {
    if (fallback !== undefined) return fallback;
    throw new Error(`GGUF metadata ${key} is missing`);
  }
  if (typeof entry.value !== "number") throw new Error(`GGUF metadata ${key} is not a number`);
  return entry.value;
}

/** Reads a Mixtral/Mistral GGUF file (merged or legacy experts, any type dequantize() reads) into float32 weights. */
export async function loadReferenceModel(path: string): Promise<ReferenceModel> {
  const file = await readGguf(path);
  const handle = await open(path, "r");
  try {
    const tensors = new Map(file.tensors.map((t) => [t.name, t]));
    const read = async (name: string, shape: number[]): Promise<Float32Array> => {
      const tensor = tensors.get(name);
      if (tensor === undefined) throw new Error(`tensor ${name} is missing`);
      if (tensor.shape.join() !== shape.join()) throw new Error(`tensor ${name} has shape [${tensor.shape}], expected [${shape}]`);
      const bytes = new Uint8Array(tensor.byteLength);
      const { bytesRead } = await handle.read(bytes, 0, tensor.byteLength, tensor.offset);
      if (bytesRead !== tensor.byteLength) throw new Error(`tensor ${name} is truncated`);
      return dequantize(tensor.type, bytes, shape[0]);
    };

    const nEmbd = metadataNumber(file, "llama.embedding_length");
    const nHeads = metadataNumber(file, "llama.attention.head_count");
    const nExperts = metadataNumber(file, "llama.expert_count", 0);
    const embdShape = tensors.get("token_embd.weight")?.shape;
    if (embdShape === undefined) throw new Error("tensor token_embd.weight is missing");
    const headDim = nEmbd / nHeads;
    if (metadataNumber(file, "llama.rope.dimension_count", headDim) !== headDim) throw new Error("partial RoPE is not modelled");
    const config: ReferenceConfig = {
      nVocab: embdShape[1],
      nEmbd,
      nLayers: metadataNumber(file, "llama.block_count"),
      nHeads,
      nHeadsKv: metadataNumber(file, "llama.attention.head_count_kv", nHeads),
      headDim,
      nFf: metadataNumber(file, "llama.feed_forward_length"),
      nExperts,
      nExpertsUsed: metadataNumber(file, "llama.expert_used_count", 0),
      ropeFreqBase: metadataNumber(file, "llama.rope.freq_base", 10000),
      rmsEps: metadataNumber(file, "llama.attention.layer_norm_rms_epsilon", 1e-5),
      contextLength: metadataNumber(file, "llama.context_length"),
      slidingWindow: file.metadata.has("llama.attention.sliding_window") ? metadataNumber(file, "llama.attention.sliding_window") : null,
    };
    const { nVocab, nFf, nLayers } = config;
    const nEmbdKv = config.nHeadsKv * headDim;

    const tokenEmbd = await read("token_embd.weight", [nEmbd, nVocab]);
    const outputNorm = await read("output_norm.weight", [nEmbd]);
    const output = tensors.has("output.weight") ? await read("output.weight", [nEmbd, nVocab]) : tokenEmbd;

    const layers: LayerWeights[] = [];
    for (let l = 0; l < nLayers; l++) {
      const blk = `blk.${l}`;
      const ffns: FfnWeights[] = [];
      if (nExperts === 0) {
        ffns.push({
          gate: await read(`${blk}.ffn_gate.weight`, [nEmbd, nFf]),
          up: await read(`${blk}.ffn_up.weight`, [nEmbd, nFf]),
          down: await read(`${blk}.ffn_down.weight`, [nFf, nEmbd]),
        });
      } else if (tensors.has(`${blk}.ffn_down_exps.weight`)) {
        // merged: expert e is the e-th (out, in) slab of the 3-D tensor
        const gate = await read(`${blk}.ffn_gate_exps.weight`, [nEmbd, nFf, nExperts]);
        const up = await read(`${blk}.ffn_up_exps.weight`, [nEmbd, nFf, nExperts]);
        const down = await read(`${blk}.ffn_down_exps.weight`, [nFf, nEmbd, nExperts]);
        const slab = nEmbd * nFf;
        for (let e = 0; e < nExperts; e++) {
          ffns.push({
            gate: gate.subarray(e * slab, (e + 1) * slab),
            up: up.subarray(e * slab, (e + 1) * slab),
            down: down.subarray(e * slab, (e + 1) * slab),
          });
        }
      } else {
        for (let e = 0; e < nExperts; e++) {
          ffns.push({
            gate: await read(`${blk}.ffn_gate.${e}.weight`, [nEmbd, nFf]),
            up: await read(`${blk}.ffn_up.${e}.weight`, [nEmbd, nFf]),
            down: await read(`${blk}.ffn_down.${e}.weight`, [nFf, nEmbd]),
          });
        }
      }
      layers.push({
        attnNorm: await read(`${blk}.attn_norm.weight`, [nEmbd]),
        wq: await read(`${blk}.attn_q.weight`, [nEmbd, nHeads * headDim]),
        wk: await read(`${blk}.attn_k.weight`, [nEmbd, nEmbdKv]),
        wv: await read(`${blk}.attn_v.weight`, [nEmbd, nEmbdKv]),
        wo: await read(`${blk}.attn_output.weight`, [nHeads * headDim, nEmbd]),
        ffnNorm: await read(`${blk}.ffn_norm.weight`, [nEmbd]),
        router: nExperts === 0 ? null : await read(`${blk}.ffn_gate_inp.weight`, [nEmbd, nExperts]),
        ffns,
      });
    }
    return { config, tokenEmbd, outputNorm, output, layers };
  } finally {
    await handle.close();
  }
}

// ================================================================================================================
// Blocks
// ================================================================================================================

/** out = x / sqrt(mean(x²) + eps) · weight (REFERENCE.md: RMSNorm) */
function rmsnorm(out: Float64Array, x: Float64Array, weight: Float32Array, eps: number): void {
  let sumSquares = 0;
  for (let i = 0; i < x.length; i++) sumSquares += x[i] * x[i];
  const scale = 1 / Math.sqrt(sumSquares / x.length + eps);
  for (let i = 0; i < x.length; i++) out[i] = x[i] * scale * weight[i];
}

/** W (rows, cols) @ x (cols,) -> out (rows,) */
function matmul(out: Float64Array, w: Float32Array, x: Float64Array, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    const row = r * cols;
    for (let c = 0; c < cols; c++) sum += w[row + c] * x[c];
    out[r] = sum;
  }
}

/**
 * Rotates each head's adjacent pairs (x[2i], x[2i+1]) by pos · base^(-2i/headDim) ("normal" RoPE, not NEOX).
 * vec (nHeadsInVec · headDim,)
 */
function rope(vec: Float64Array, headDim: number, pos: number, base: number): void {
  for (let head = 0; head < vec.length / headDim; head++) {
    for (let i = 0; i < headDim / 2; i++) {
      const theta = pos * Math.pow(base, (-2 * i) / headDim);
      const cos = Math.cos(theta), sin = Math.sin(theta);
      const at = head * headDim + 2 * i;
      const x0 = vec[at], x1 = vec[at + 1];
      vec[at] = x0 * cos - x1 * sin;
      vec[at + 1] = x0 * sin + x1 * cos;
    }
  }
}

/** x (n,) -> softmax(x) in place */
function softmax(x: Float64Array, n = x.length): void {
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, x[i]);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += x[i] = Math.exp(x[i] - max);
  for (let i = 0; i < n; i++) x[i] /= sum;
}

function silu(z: number): number {
  return z / (1 + Math.exp(-z));
}

/** out += weight · W_down(silu(W_gate·x) ⊙ W_up·x); x (nEmbd,), hidden scratch (nFf,) ×2 */
function swiglu(out: Float64Array, ffn: FfnWeights, weight: number, x: Float64Array, gate: Float64Array, up: Float64Array, nFf: number, nEmbd: number): void {
  matmul(gate, ffn.gate, x, nFf, nEmbd);
  matmul(up, ffn.up, x, nFf, nEmbd);
  for (let i = 0; i < nFf; i++) gate[i] = silu(gate[i]) * up[i];
  for (let r = 0; r < nEmbd; r++) {
    let sum = 0;
    const row = r * nFf;
    for (let c = 0; c < nFf; c++) sum += ffn.down[row + c] * gate[c];
    out[r] += weight * sum;
  }
}

/**
 * Router (REFERENCE.md): p = softmax(W_gate_inp · x) over all experts, the top k by probability (ties: lower
 * index), their weights renormalised to sum to 1.
 */
function route(logits: Float64Array, k: number): { experts: number[]; weights: number[] } {
  softmax(logits);
  const order = [...logits.keys()].sort((a, b) => logits[b] - logits[a] || a - b);
  const experts = order.slice(0, k);
  const total = experts.reduce((sum, e) => sum + logits[e], 0);
  return { experts, weights: experts.map((e) => logits[e] / total) };
}

// ================================================================================================================
// Forward
// ================================================================================================================

/** Activations and the KV cache of one sequence (every position is kept; the window is applied when reading). */
export interface ReferenceState {
  x: Float64Array; // (nEmbd,) the residual stream
  xb: Float64Array; // (nEmbd,) normed input of a sublayer
  xb2: Float64Array; // (nEmbd,) attention output before Wo
  q: Float64Array; // (nHeads·headDim,)
  k: Float64Array; // (nHeadsKv·headDim,)
  v: Float64Array; // (nHeadsKv·headDim,)
  scores: Float64Array; // (maxPositions,)
  hidden: Float64Array; // (nFf,)
  hidden2: Float64Array; // (nFf,)
  routerLogits: Float64Array; // (nExperts,)
  ffnOut: Float64Array; // (nEmbd,)
  logits: Float64Array; // (nVocab,)
  keyCache: Float64Array[]; // per layer (maxPositions, nHeadsKv·headDim)
  valueCache: Float64Array[]; // per layer (maxPositions, nHeadsKv·headDim)
  /** selectedExperts[pos][layer]: the experts the router chose, best first (empty for a dense layer). */
  selectedExperts: number[][][];
  /** routerProbabilities[pos][layer]: softmax over all experts (empty for a dense layer). */
  routerProbabilities: number[][][];
}

export function createReferenceState(config: ReferenceConfig, maxPositions: number): ReferenceState {
  const kvDim = config.nHeadsKv * config.headDim;
  return {
    x: new Float64Array(config.nEmbd),
    xb: new Float64Array(config.nEmbd),
    xb2: new Float64Array(config.nHeads * config.headDim),
    q: new Float64Array(config.nHeads * config.headDim),
    k: new Float64Array(kvDim),
    v: new Float64Array(kvDim),
    scores: new Float64Array(maxPositions),
    hidden: new Float64Array(config.nFf),
    hidden2: new Float64Array(config.nFf),
    routerLogits: new Float64Array(Math.max(1, config.nExperts)),
    ffnOut: new Float64Array(config.nEmbd),
    logits: new Float64Array(config.nVocab),
    keyCache: Array.from({ length: config.nLayers }, () => new Float64Array(maxPositions * kvDim)),
    valueCache: Array.from({ length: config.nLayers }, () => new Float64Array(maxPositions * kvDim)),
    selectedExperts: [],
    routerProbabilities: [],
  };
}

export interface ReferenceForwardOptions {
  /** Attention window W (position i attends to (i−W, i]); null for full attention. Default: the file's. */
  slidingWindow?: number | null;
}

/** Runs token `token` at position `pos` (every earlier position already run) and returns the logits (nVocab,). */
export function forward(model: ReferenceModel, state: ReferenceState, token: number, pos: number, options: ReferenceForwardOptions = {}): Float64Array {
  const c = model.config;
  const s = state;
  const { nEmbd, headDim, nHeads, nHeadsKv, nFf } = c;
  const kvDim = nHeadsKv * headDim;
  const window = options.slidingWindow === undefined ? c.slidingWindow : options.slidingWindow;
  const firstVisible = window === null ? 0 : Math.max(0, pos - window + 1);
  const headsPerKv = nHeads / nHeadsKv;

  // x = token_embd[token]
  for (let i = 0; i < nEmbd; i++) s.x[i] = model.tokenEmbd[token * nEmbd + i];
  s.selectedExperts[pos] = [];
  s.routerProbabilities[pos] = [];

  for (let l = 0; l < c.nLayers; l++) {
    const layer = model.layers[l];

    // ---- attention: h = x + Wo · Attn(RoPE(Wq·n), RoPE(Wk·n), Wv·n), n = RMSNorm(x)·attn_norm
    rmsnorm(s.xb, s.x, layer.attnNorm, c.rmsEps);
    matmul(s.q, layer.wq, s.xb, nHeads * headDim, nEmbd);
    matmul(s.k, layer.wk, s.xb, kvDim, nEmbd);
    matmul(s.v, layer.wv, s.xb, kvDim, nEmbd);
    rope(s.q, headDim, pos, c.ropeFreqBase);
    rope(s.k, headDim, pos, c.ropeFreqBase);
    s.keyCache[l].set(s.k, pos * kvDim);
    s.valueCache[l].set(s.v, pos * kvDim);

    for (let h = 0; h < nHeads; h++) {
      const kvHead = Math.floor(h / headsPerKv); // GQA: query head h reads kv head h / (nHeads / nHeadsKv)
      const q = h * headDim;
      for (let t = firstVisible; t <= pos; t++) {
        const k = t * kvDim + kvHead * headDim;
        let dot = 0;
        for (let i = 0; i < headDim; i++) dot += s.q[q + i] * s.keyCache[l][k + i];
        s.scores[t - firstVisible] = dot / Math.sqrt(headDim);
      }
      const visible = pos - firstVisible + 1;
      softmax(s.scores, visible);
      for (let i = 0; i < headDim; i++) s.xb2[q + i] = 0;
      for (let t = firstVisible; t <= pos; t++) {
        const v = t * kvDim + kvHead * headDim;
        const a = s.scores[t - firstVisible];
        for (let i = 0; i < headDim; i++) s.xb2[q + i] += a * s.valueCache[l][v + i];
      }
    }
    matmul(s.xb, layer.wo, s.xb2, nEmbd, nHeads * headDim);
    for (let i = 0; i < nEmbd; i++) s.x[i] += s.xb[i];

    // ---- FFN: out = h + MoE(RMSNorm(h)·ffn_norm), or the one dense SwiGLU
    rmsnorm(s.xb, s.x, layer.ffnNorm, c.rmsEps);
    s.ffnOut.fill(0);
    if (layer.router === null) {
      swiglu(s.ffnOut, layer.ffns[0], 1, s.xb, s.hidden, s.hidden2, nFf, nEmbd);
      s.selectedExperts[pos].push([]);
      s.routerProbabilities[pos].push([]);
    } else {
      matmul(s.routerLogits, layer.router, s.xb, c.nExperts, nEmbd);
      const { experts, weights } = route(s.routerLogits, c.nExpertsUsed);
      s.selectedExperts[pos].push(experts);
      s.routerProbabilities[pos].push(Array.from(s.routerLogits.subarray(0, c.nExperts)));
      for (let j = 0; j < experts.length; j++) swiglu(s.ffnOut, layer.ffns[experts[j]], weights[j], s.xb, s.hidden, s.hidden2, nFf, nEmbd);
    }
    for (let i = 0; i < nEmbd; i++) s.x[i] += s.ffnOut[i];
  }

  // ---- logits = output · (RMSNorm(x)·output_norm)
  rmsnorm(s.xb, s.x, model.outputNorm, c.rmsEps);
  matmul(s.logits, model.output, s.xb, c.nVocab, nEmbd);
  return s.logits;
}

/**
 * Teacher-forced next-token distributions: entry i is softmax(logits after tokens[0..i]), computed in float64.
 * Also returns the state, whose selectedExperts record the routing.
 */
export function teacherForcedDistributions(model: ReferenceModel, tokens: readonly number[], options: ReferenceForwardOptions = {}): { distributions: Float64Array[]; state: ReferenceState } {
  const state = createReferenceState(model.config, tokens.length);
  const distributions = tokens.map((token, pos) => {
    const probabilities = Float64Array.from(forward(model, state, token, pos, options));
    softmax(probabilities);
    return probabilities;
  });
  return { distributions, state };
}

/** Greedy decoding: the `count` tokens the reference picks (argmax each step) after `prompt`. */
export function referenceGreedy(model: ReferenceModel, prompt: readonly number[], count: number, options: ReferenceForwardOptions = {}): number[] {
  if (prompt.length === 0) throw new RangeError("prompt must hold at least one token");
  const state = createReferenceState(model.config, prompt.length + count);
  const logits = state.logits; // forward() writes each step's logits here
  prompt.forEach((token, pos) => forward(model, state, token, pos, options));
  const generated: number[] = [];
  for (let step = 0; step < count; step++) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    generated.push(best);
    if (step + 1 < count) forward(model, state, best, prompt.length + step, options);
  }
  return generated;
}
