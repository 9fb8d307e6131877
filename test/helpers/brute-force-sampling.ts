/**
 * Textbook definitions of the samplers, written the slow obvious way (full sorts, explicit loops), to hold the
 * library's selection algorithms to. Sets are returned as sorted arrays of token ids.
 */

/** Every finite token, best first: logit descending, then id ascending. */
export function rankByLogit(logits: ArrayLike<number>): number[] {
  const ids: number[] = [];
  for (let id = 0; id < logits.length; id++) if (logits[id] !== -Infinity) ids.push(id);
  return ids.sort((a, b) => logits[b] - logits[a] || a - b);
}

export function softmaxOver(logits: ArrayLike<number>, ids: readonly number[]): Map<number, number> {
  const max = Math.max(...ids.map((id) => logits[id]));
  let total = 0;
  for (const id of ids) total += Math.exp(logits[id] - max);
  return new Map(ids.map((id) => [id, Math.exp(logits[id] - max) / total]));
}

const ascending = (ids: number[]) => [...ids].sort((a, b) => a - b);

export function bruteTopK(logits: ArrayLike<number>, k: number): number[] {
  const ranked = rankByLogit(logits);
  return ascending(k <= 0 ? ranked : ranked.slice(0, k));
}

/** Returns the kept set, or undefined when a cumulative sum lies within `margin` of p (rounding could go either way). */
export function bruteTopP(logits: ArrayLike<number>, p: number, margin = 1e-9): number[] | undefined {
  const ranked = rankByLogit(logits);
  if (p >= 1) return ascending(ranked);
  const probs = softmaxOver(logits, ranked);
  let cumulative = 0;
  for (let i = 0; i < ranked.length; i++) {
    cumulative += probs.get(ranked[i])!;
    if (Math.abs(cumulative - p) < margin) return undefined;
    if (cumulative >= p) return ascending(ranked.slice(0, i + 1));
  }
  return ascending(ranked);
}

/** Returns the kept set, or undefined when a ratio p_i / p_top lies within `margin` of p. */
export function bruteMinP(logits: ArrayLike<number>, p: number, margin = 1e-9): number[] | undefined {
  const ranked = rankByLogit(logits);
  if (p <= 0) return ascending(ranked);
  const probs = softmaxOver(logits, ranked);
  const top = probs.get(ranked[0])!;
  if (ranked.some((id) => Math.abs(probs.get(id)! / top - p) < margin)) return undefined;
  return ascending(ranked.filter((id) => probs.get(id)! >= p * top));
}

export function bruteTypicalP(logits: ArrayLike<number>, p: number, margin = 1e-9): number[] | undefined {
  const ranked = rankByLogit(logits);
  if (p >= 1) return ascending(ranked);
  const probs = softmaxOver(logits, ranked);
  let entropy = 0;
  for (const id of ranked) entropy -= probs.get(id)! * Math.log(probs.get(id)!);
  const distance = (id: number) => Math.abs(-Math.log(probs.get(id)!) - entropy);
  const typical = [...ranked].sort((a, b) => distance(a) - distance(b) || a - b);
  let cumulative = 0;
  for (let i = 0; i < typical.length; i++) {
    cumulative += probs.get(typical[i])!;
    if (Math.abs(cumulative - p) < margin) return undefined;
    if (cumulative > p) return ascending(typical.slice(0, i + 1));
  }
  return ascending(typical);
}

/** llama.cpp's penalty formula, token by token, in plain double arithmetic. */
export function brutePenalties(
  logits: ArrayLike<number>,
  window: readonly number[],
  repeat: number,
  frequency: number,
  presence: number,
): number[] {
  const out = Array.from(logits);
  const counts = new Map<number, number>();
  for (const token of window) counts.set(token, (counts.get(token) ?? 0) + 1);
  for (const [token, count] of counts) {
    const logit = out[token];
    const repeated = logit <= 0 ? logit * repeat : logit / repeat;
    out[token] = repeated - (count * frequency + (count > 0 ? presence : 0));
  }
  return out;
}

/** The ids whose value is not -Infinity, ascending. */
export function keptIds(logits: ArrayLike<number>): number[] {
  const ids: number[] = [];
  for (let id = 0; id < logits.length; id++) if (logits[id] !== -Infinity) ids.push(id);
  return ids;
}

/** Deterministic random logits from a tiny LCG (independent of the library's generator). */
export function randomLogits(length: number, seed: number, scale = 4, quantum = 0): Float32Array {
  let state = seed >>> 0 || 1;
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const gaussianish = ((state >>> 8) / 16777216 + ((Math.imul(state, 2654435761) >>> 8) / 16777216) - 1) * scale;
    out[i] = quantum > 0 ? Math.round(gaussianish / quantum) * quantum : gaussianish;
  }
  return out;
}
