/**
 * The candidate list every sampler works on, as llama.cpp's `llama_token_data_array`: parallel arrays of token
 * ids and logits, shrunk in place by each filter. Scratch is allocated once per vocabulary size.
 *
 * Ranking is total and deterministic: a higher key first, and among equal keys the lower token id first.
 * Nothing sorts the whole vocabulary: a bounded min-heap selects the best k in one pass, and top-p grows that
 * selection geometrically until the nucleus is covered.
 * @module
 */
import { ArgumentRangeError } from "../errors.js";
import type { RandomSource } from "./random.js";

/** Up to this many candidates, {@link Candidates.draw} sorts them by id instead of scattering. */
const SMALL_DRAW = 64;

export class Candidates {
  readonly capacity: number;
  readonly ids: Int32Array;
  readonly logits: Float32Array;
  /** Ranking keys, moved with ids and logits. Equal to the logits except inside typical sampling. */
  readonly keys: Float64Array;
  /** Probabilities written by {@link computeProbabilities}. */
  readonly probs: Float64Array;
  size = 0;
  /** The first `sortedCount` entries are the best ones by key, in best-first order. */
  sortedCount = 0;

  /** Scratch of {@link draw}: positions by id for small sets, weights by id (kept all-zero between calls) for large. */
  private readonly drawOrder = new Int32Array(SMALL_DRAW);
  private readonly denseWeights: Float64Array;
  private readonly heapKeys: Float64Array;
  private readonly heapIds: Int32Array;
  private readonly heapLogits: Float32Array;
  private heapSize = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
    this.ids = new Int32Array(capacity);
    this.logits = new Float32Array(capacity);
    this.keys = new Float64Array(capacity);
    this.probs = new Float64Array(capacity);
    this.denseWeights = new Float64Array(capacity);
    this.heapKeys = new Float64Array(capacity);
    this.heapIds = new Int32Array(capacity);
    this.heapLogits = new Float32Array(capacity);
  }

  /** Loads every token whose logit is not -Infinity. */
  loadAll(logits: Float32Array): void {
    const ids = this.ids;
    const out = this.logits;
    const keys = this.keys;
    let size = 0;
    for (let id = 0; id < logits.length; id++) {
      const logit = logits[id];
      if (logit === -Infinity) continue;
      if (!(logit < Infinity)) throw badLogit(id, logit);
      ids[size] = id;
      out[size] = logit;
      keys[size] = logit;
      size++;
    }
    this.size = size;
    this.sortedCount = 0;
  }

  /** Loads the `k` best tokens of `logits` (skipping -Infinity) in best-first order, in one pass. */
  loadTopK(logits: Float32Array, k: number): void {
    this.heapSize = 0;
    const heapKeys = this.heapKeys;
    let worstKey = -Infinity;
    for (let id = 0; id < logits.length; id++) {
      const logit = logits[id];
      if (logit === -Infinity) continue;
      if (!(logit < Infinity)) throw badLogit(id, logit);
      if (this.heapSize < k) {
        this.heapPush(logit, id, logit);
        worstKey = heapKeys[0];
      } else if (logit > worstKey) {
        // Ids arrive in increasing order, so an equal key never outranks the heap's worst.
        this.heapReplaceTop(logit, id, logit);
        worstKey = heapKeys[0];
      }
    }
    this.size = this.heapSize;
    this.drainHeap(0);
    this.sortedCount = this.size;
  }

  /** Ensures the first `count` entries are the best `count`, best first (count ≤ size). */
  sortBest(count: number): void {
    if (count <= this.sortedCount) return;
    const from = this.sortedCount;
    const want = count - from;
    const ids = this.ids;
    const logits = this.logits;
    const keys = this.keys;
    const heapKeys = this.heapKeys;
    const heapIds = this.heapIds;
    const heapLogits = this.heapLogits;
    this.heapSize = 0;
    let rest = from + want; // rejected entries are written back behind the selection, never ahead of the reader
    for (let i = from; i < this.size; i++) {
      const key = keys[i];
      const id = ids[i];
      const logit = logits[i];
      if (this.heapSize < want) {
        this.heapPush(key, id, logit);
        continue;
      }
      if (key > heapKeys[0] || (key === heapKeys[0] && id < heapIds[0])) {
        keys[rest] = heapKeys[0];
        ids[rest] = heapIds[0];
        logits[rest] = heapLogits[0];
        this.heapReplaceTop(key, id, logit);
      } else {
        keys[rest] = key;
        ids[rest] = id;
        logits[rest] = logit;
      }
      rest++;
    }
    this.drainHeap(from);
    this.sortedCount = count;
  }

  /** Keeps the first `count` entries. */
  truncate(count: number): void {
    if (count < this.size) {
      this.size = count;
      if (this.sortedCount > count) this.sortedCount = count;
    }
  }

  maxLogit(): number {
    if (this.sortedCount > 0 && this.keysAreLogits) return this.logits[0];
    let max = -Infinity;
    for (let i = 0; i < this.size; i++) if (this.logits[i] > max) max = this.logits[i];
    return max;
  }

  /** False only while typical sampling ranks by its own key. */
  keysAreLogits = true;

  /** Makes keys equal the logits again (after ranking by another key), forgetting the sorted prefix. */
  restoreLogitKeys(): void {
    for (let i = 0; i < this.size; i++) this.keys[i] = this.logits[i];
    this.keysAreLogits = true;
    this.sortedCount = 0;
  }

  /** probs[i] = softmax(logits / temperature)[i]; returns nothing, probs sum to 1. */
  computeProbabilities(temperature: number): void {
    const max = this.maxLogit();
    const scale = 1 / temperature;
    const probs = this.probs;
    let sum = 0;
    for (let i = 0; i < this.size; i++) {
      const p = Math.exp((this.logits[i] - max) * scale);
      probs[i] = p;
      sum += p;
    }
    const inverse = 1 / sum;
    for (let i = 0; i < this.size; i++) probs[i] *= inverse;
  }

  /**
   * Draws one token from softmax(logits / temperature) with one uniform number, walking the candidates in token-id
   * order: the token drawn depends only on the set and its logits, never on the order the filters left them in.
   */
  draw(temperature: number, random: RandomSource): number {
    const size = this.size;
    const u = random.nextFloat(); // one draw per token always, so later draws never depend on set sizes
    if (size === 1) return this.ids[0];
    const max = this.maxLogit();
    const scale = 1 / temperature;
    const { ids, logits, probs } = this;
    if (size <= SMALL_DRAW) {
      const order = this.drawOrder;
      for (let i = 0; i < size; i++) {
        probs[i] = Math.exp((logits[i] - max) * scale);
        let j = i;
        for (; j > 0 && ids[order[j - 1]] > ids[i]; j--) order[j] = order[j - 1];
        order[j] = i;
      }
      let total = 0;
      for (let i = 0; i < size; i++) total += probs[order[i]];
      const target = u * total;
      let cumulative = 0;
      for (let i = 0; i < size; i++) {
        cumulative += probs[order[i]];
        if (target < cumulative) return ids[order[i]];
      }
      for (let i = size - 1; i >= 0; i--) if (probs[order[i]] > 0) return ids[order[i]];
      return ids[order[0]];
    }
    // Large sets: scatter the weights by id and walk the ids in order.
    const dense = this.denseWeights;
    let lowest = this.capacity;
    let highest = 0;
    for (let i = 0; i < size; i++) {
      const id = ids[i];
      dense[id] = Math.exp((logits[i] - max) * scale);
      if (id < lowest) lowest = id;
      if (id > highest) highest = id;
    }
    let total = 0;
    for (let id = lowest; id <= highest; id++) total += dense[id];
    const target = u * total;
    let cumulative = 0;
    let chosen = -1;
    let lastPositive = lowest;
    for (let id = lowest; id <= highest; id++) {
      const weight = dense[id];
      if (weight > 0) lastPositive = id;
      cumulative += weight;
      if (target < cumulative) {
        chosen = id;
        break;
      }
    }
    for (let i = 0; i < size; i++) dense[ids[i]] = 0;
    return chosen >= 0 ? chosen : lastPositive;
  }

  /**
   * Rearranges the candidates so the shortest best-first prefix whose weight (in `probs`) reaches `target`
   * occupies [0, m), and returns m. "Reaches" is ≥, or > when `strict`. Expected O(n): a quickselect that
   * follows the mass instead of a count, so nothing is sorted but the last few entries.
   */
  selectMassPrefix(target: number, strict: boolean): number {
    const probs = this.probs;
    let lo = 0;
    let hi = this.size;
    let before = 0; // weight of the entries known to rank above `lo`
    while (hi - lo > 16) {
      const pivot = this.partition(lo, hi);
      let better = 0;
      for (let i = lo; i < pivot; i++) better += probs[i];
      const withBetter = before + better;
      // The prefix holds at least one entry, so an empty better side is never the answer (median-of-three
      // already keeps the pivot off the range's best; this keeps correctness independent of the pivot rule).
      if (pivot > lo && (strict ? withBetter > target : withBetter >= target)) {
        hi = pivot;
        continue;
      }
      before = withBetter + probs[pivot];
      if (strict ? before > target : before >= target) return pivot + 1;
      lo = pivot + 1;
    }
    this.insertionSort(lo, hi);
    for (let i = lo; i < hi; i++) {
      before += probs[i];
      if (strict ? before > target : before >= target) return i + 1;
    }
    return hi; // rounding kept the sum a hair short: keep every entry that ranks within the reached mass
  }

  /** True when entry a ranks before entry b. */
  private ranksBefore(a: number, b: number): boolean {
    const keys = this.keys;
    return keys[a] > keys[b] || (keys[a] === keys[b] && this.ids[a] < this.ids[b]);
  }

  private swap(a: number, b: number): void {
    const { ids, logits, keys, probs } = this;
    const id = ids[a];
    ids[a] = ids[b];
    ids[b] = id;
    const logit = logits[a];
    logits[a] = logits[b];
    logits[b] = logit;
    const key = keys[a];
    keys[a] = keys[b];
    keys[b] = key;
    const prob = probs[a];
    probs[a] = probs[b];
    probs[b] = prob;
  }

  /** Lomuto partition of [lo, hi) around a median-of-three pivot; returns the pivot's final index. */
  private partition(lo: number, hi: number): number {
    const last = hi - 1;
    const mid = lo + ((hi - lo) >> 1);
    if (this.ranksBefore(mid, lo)) this.swap(mid, lo);
    if (this.ranksBefore(last, lo)) this.swap(last, lo);
    if (this.ranksBefore(mid, last)) this.swap(mid, last); // the median now sits at `last`
    let store = lo;
    for (let i = lo; i < last; i++) {
      if (this.ranksBefore(i, last)) {
        if (i !== store) this.swap(i, store);
        store++;
      }
    }
    this.swap(store, last);
    return store;
  }

  private insertionSort(lo: number, hi: number): void {
    for (let i = lo + 1; i < hi; i++) {
      for (let j = i; j > lo && this.ranksBefore(j, j - 1); j--) this.swap(j, j - 1);
    }
  }

  private heapPush(key: number, id: number, logit: number): void {
    const keys = this.heapKeys;
    const ids = this.heapIds;
    const logits = this.heapLogits;
    let child = this.heapSize++;
    while (child > 0) {
      const parent = (child - 1) >> 1;
      // Min-heap on (key, then higher id): the root is the worst entry kept.
      if (keys[parent] < key || (keys[parent] === key && ids[parent] > id)) break;
      keys[child] = keys[parent];
      ids[child] = ids[parent];
      logits[child] = logits[parent];
      child = parent;
    }
    keys[child] = key;
    ids[child] = id;
    logits[child] = logit;
  }

  private heapReplaceTop(key: number, id: number, logit: number): void {
    const keys = this.heapKeys;
    const ids = this.heapIds;
    const logits = this.heapLogits;
    const size = this.heapSize;
    let parent = 0;
    for (;;) {
      let child = 2 * parent + 1;
      if (child >= size) break;
      const right = child + 1;
      if (right < size && (keys[right] < keys[child] || (keys[right] === keys[child] && ids[right] > ids[child]))) child = right;
      if (key < keys[child] || (key === keys[child] && id > ids[child])) break;
      keys[parent] = keys[child];
      ids[parent] = ids[child];
      logits[parent] = logits[child];
      parent = child;
    }
    keys[parent] = key;
    ids[parent] = id;
    logits[parent] = logit;
  }

  /** Pops the heap into [from, from + heapSize), best first. */
  private drainHeap(from: number): void {
    const heapKeys = this.heapKeys;
    const heapIds = this.heapIds;
    const heapLogits = this.heapLogits;
    for (let slot = from + this.heapSize - 1; this.heapSize > 0; slot--) {
      this.keys[slot] = heapKeys[0];
      this.ids[slot] = heapIds[0];
      this.logits[slot] = heapLogits[0];
      const last = --this.heapSize;
      if (last > 0) {
        const key = heapKeys[last];
        const id = heapIds[last];
        const logit = heapLogits[last];
        this.heapReplaceTop(key, id, logit);
      }
    }
  }
}

function badLogit(id: number, logit: number): RangeError {
  return new ArgumentRangeError(`logits[${id}] is ${logit}; logits must be finite or -Infinity (masked)`);
}

// ---------------------------------------------------------------------------------------------------------
// Filters, in llama.cpp's semantics (src/llama-sampling.cpp). Each keeps at least one candidate.
// ---------------------------------------------------------------------------------------------------------

/** Keeps the k best (k ≤ 0 or k ≥ size: no-op). */
export function applyTopK(candidates: Candidates, k: number): void {
  if (k <= 0 || k >= candidates.size) return;
  candidates.sortBest(k);
  candidates.truncate(k);
}

/** Keeps the shortest best-first prefix whose probability mass reaches p (the crossing token included). */
export function applyTopP(candidates: Candidates, p: number): void {
  const size = candidates.size;
  if (p >= 1 || size <= 1) return;
  const max = candidates.maxLogit();
  const { logits, probs } = candidates;
  let total = 0;
  for (let i = 0; i < size; i++) {
    const weight = Math.exp(logits[i] - max);
    probs[i] = weight;
    total += weight;
  }
  const target = p * total;
  if (candidates.sortedCount === size) {
    let cumulative = 0;
    for (let i = 0; i < size; i++) {
      cumulative += probs[i];
      if (cumulative >= target) {
        candidates.truncate(i + 1);
        return;
      }
    }
    return;
  }
  const keep = candidates.selectMassPrefix(target, false);
  candidates.sortedCount = 0;
  candidates.truncate(keep);
}

/** Keeps tokens whose probability is at least p × the best one's: logit ≥ max + ln p. */
export function applyMinP(candidates: Candidates, p: number): void {
  if (p <= 0 || candidates.size <= 1) return;
  const threshold = candidates.maxLogit() + Math.log(p);
  const { ids, logits, keys } = candidates;
  let kept = 0;
  let keptSorted = 0;
  for (let i = 0; i < candidates.size; i++) {
    if (logits[i] < threshold) continue;
    if (i < candidates.sortedCount) keptSorted++;
    ids[kept] = ids[i];
    logits[kept] = logits[i];
    keys[kept] = keys[i];
    kept++;
  }
  candidates.size = kept;
  // Kept entries of a best-first prefix stay best-first and still outrank everything after them.
  candidates.sortedCount = keptSorted;
}

/**
 * Locally typical sampling (Meister et al. 2022; llama.cpp's `typical`): rank by |−ln p − H| ascending and
 * keep until the mass exceeds p.
 */
export function applyTypicalP(candidates: Candidates, p: number): void {
  const size = candidates.size;
  if (p >= 1 || size <= 1) return;
  candidates.computeProbabilities(1);
  const { probs, keys } = candidates;
  let entropy = 0;
  for (let i = 0; i < size; i++) if (probs[i] > 0) entropy -= probs[i] * Math.log(probs[i]);
  // Best = most typical, so the key is the negated distance.
  for (let i = 0; i < size; i++) keys[i] = -Math.abs(-Math.log(probs[i]) - entropy);
  candidates.keysAreLogits = false;
  candidates.sortedCount = 0;
  const keep = candidates.selectMassPrefix(p, true);
  candidates.truncate(keep);
  candidates.restoreLogitKeys();
}
