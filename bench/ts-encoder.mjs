// A pure JavaScript SentencePiece BPE encoder with the same algorithm as native/tokenizer/spm.cc (segments cut
// before U+2581, rescanning merges for short segments, a heap for long ones), kept only to measure whether
// TypeScript could replace the native encoder. It assumes no token holds U+2581 after another character except
// runs of U+2581 (true of Mistral v1) and skips special-token parsing. Not shipped.

const SPACE_MARK = "\u2581";

export class JsSpmEncoder {
  constructor(tokens, scores) {
    this.scores = scores;
    this.ids = new Map(tokens.map((text, id) => [text, id]));
    this.bmp = new Int32Array(65536).fill(-1);
    for (const [text, id] of this.ids) {
      if (text.length === 1) this.bmp[text.charCodeAt(0)] = id;
    }
    // Pair table: open addressing over (left * 65536 + right) -> merged id.
    const pairs = [];
    for (let id = 0; id < tokens.length; id++) {
      const text = tokens[id];
      for (let split = 1; split < text.length; split++) {
        const left = this.ids.get(text.slice(0, split));
        const right = this.ids.get(text.slice(split));
        if (left !== undefined && right !== undefined) pairs.push(left * 65536 + right, id);
      }
    }
    let size = 16;
    while (size < pairs.length) size <<= 1;
    this.pairKeys = new Int32Array(size).fill(-1);
    this.pairValues = new Int32Array(size);
    this.pairMask = size - 1;
    for (let i = 0; i < pairs.length; i += 2) {
      let slot = Math.imul(pairs[i], 0x9e3779b1) >>> 0 & this.pairMask;
      while (this.pairKeys[slot] !== -1) slot = (slot + 1) & this.pairMask;
      this.pairKeys[slot] = pairs[i];
      this.pairValues[slot] = pairs[i + 1];
    }
    this.byteTokens = new Int32Array(256);
    for (let b = 0; b < 256; b++) this.byteTokens[b] = this.ids.get(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`) ?? 0;
    this.encoder = new TextEncoder();
    this.symbolText = [];
    this.symbolId = new Int32Array(1 << 16);
    this.pairId = new Int32Array(1 << 16);
  }

  pair(left, right) {
    const key = left * 65536 + right;
    let slot = Math.imul(key, 0x9e3779b1) >>> 0 & this.pairMask;
    for (;;) {
      const stored = this.pairKeys[slot];
      if (stored === key) return this.pairValues[slot];
      if (stored === -1) return -1;
      slot = (slot + 1) & this.pairMask;
    }
  }

  merged(texts, ids, left, right) {
    if (ids[left] >= 0 && ids[right] >= 0) return this.pair(ids[left], ids[right]);
    return this.ids.get(texts[left] + texts[right]) ?? -1;
  }

  encode(text) {
    const escaped = SPACE_MARK + text.replaceAll(" ", SPACE_MARK);
    const out = [];
    let begin = 0;
    for (let at = 1; at < escaped.length; at++) {
      if (escaped.charCodeAt(at) === 0x2581 && escaped.charCodeAt(at - 1) !== 0x2581) {
        this.segment(escaped, begin, at, out);
        begin = at;
      }
    }
    this.segment(escaped, begin, escaped.length, out);
    return out;
  }

  segment(text, begin, end, out) {
    const texts = this.symbolText;
    texts.length = 0;
    let ids = this.symbolId;
    if (end - begin > ids.length) ids = this.symbolId = new Int32Array(2 * (end - begin));
    let n = 0;
    for (let at = begin; at < end; ) {
      const code = text.charCodeAt(at);
      const length = code >= 0xd800 && code <= 0xdbff && at + 1 < end ? 2 : 1;
      const char = length === 1 ? text[at] : text.slice(at, at + 2);
      texts[n] = char;
      ids[n] = length === 1 ? this.bmp[code] : (this.ids.get(char) ?? -1);
      n++;
      at += length;
    }
    if (n <= 40) n = this.scan(texts, ids, n);
    else n = this.heap(texts, ids, n);
    for (let i = 0; i < n; i++) {
      if (ids[i] >= 0) out.push(ids[i]);
      else for (const byte of this.encoder.encode(texts[i])) out.push(this.byteTokens[byte]);
    }
  }

  scan(texts, ids, n) {
    const pairId = this.pairId;
    const scores = this.scores;
    for (let i = 0; i + 1 < n; i++) pairId[i] = this.merged(texts, ids, i, i + 1);
    while (n > 1) {
      let best = -1;
      let bestScore = 0;
      for (let i = 0; i + 1 < n; i++) {
        const id = pairId[i];
        if (id >= 0 && (best < 0 || scores[id] > bestScore)) {
          best = i;
          bestScore = scores[id];
        }
      }
      if (best < 0) break;
      texts[best] += texts[best + 1];
      ids[best] = pairId[best];
      texts.splice(best + 1, 1);
      ids.copyWithin(best + 1, best + 2, n);
      pairId.copyWithin(best, best + 1, n - 1);
      n--;
      if (best > 0) pairId[best - 1] = this.merged(texts, ids, best - 1, best);
      if (best + 1 < n) pairId[best] = this.merged(texts, ids, best, best + 1);
    }
    return n;
  }

  heap(texts, ids, n) {
    // llama.cpp's queue over a linked list; survivors are compacted back into texts/ids.
    const prev = new Int32Array(n).map((_, i) => i - 1);
    const next = new Int32Array(n).map((_, i) => (i + 1 < n ? i + 1 : -1));
    const alive = new Uint8Array(n).fill(1);
    const version = new Int32Array(n);
    const heap = [];
    const better = (a, b) => a.score > b.score || (a.score === b.score && a.left < b.left);
    const push = (item) => {
      heap.push(item);
      for (let i = heap.length - 1; i > 0; ) {
        const parent = (i - 1) >> 1;
        if (!better(heap[i], heap[parent])) break;
        [heap[i], heap[parent]] = [heap[parent], heap[i]];
        i = parent;
      }
    };
    const pop = () => {
      const top = heap[0];
      const last = heap.pop();
      if (heap.length > 0) {
        heap[0] = last;
        for (let i = 0; ; ) {
          const l = 2 * i + 1, r = l + 1;
          let m = i;
          if (l < heap.length && better(heap[l], heap[m])) m = l;
          if (r < heap.length && better(heap[r], heap[m])) m = r;
          if (m === i) break;
          [heap[i], heap[m]] = [heap[m], heap[i]];
          i = m;
        }
      }
      return top;
    };
    const tryAdd = (left, right) => {
      if (left < 0 || right < 0) return;
      const id = this.merged(texts, ids, left, right);
      if (id >= 0) push({ score: this.scores[id], left, right, id, lv: version[left], rv: version[right] });
    };
    for (let i = 1; i < n; i++) tryAdd(i - 1, i);
    while (heap.length > 0) {
      const b = pop();
      if (!alive[b.left] || !alive[b.right] || version[b.left] !== b.lv || version[b.right] !== b.rv) continue;
      texts[b.left] += texts[b.right];
      ids[b.left] = b.id;
      version[b.left]++;
      alive[b.right] = 0;
      next[b.left] = next[b.right];
      if (next[b.right] >= 0) prev[next[b.right]] = b.left;
      tryAdd(prev[b.left], b.left);
      tryAdd(b.left, next[b.left]);
    }
    let count = 0;
    for (let i = 0; i !== -1; i = next[i]) {
      texts[count] = texts[i];
      ids[count] = ids[i];
      count++;
    }
    return count;
  }
}
