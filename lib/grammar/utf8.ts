/**
 * Code-point sets → UTF-8 byte-range sequences, so the grammar runs on bytes and a token that ends inside a
 * multi-byte character leaves the matcher between two byte ranges rather than in a special partial state.
 * Each sequence is a list of inclusive byte ranges, one per byte, e.g. U+0800..U+0FFF → [E0][A0-BF][80-BF].
 * Surrogates (U+D800..U+DFFF) and overlong forms are never produced, so matched text is always valid UTF-8.
 * @module
 */

export type ByteRange = readonly [number, number];
export type ByteSequence = readonly ByteRange[];

export const MAX_CODE_POINT = 0x10ffff;

/** Sorts and merges inclusive ranges; complements them over [0, U+10FFFF] when `negated`. */
export function normalizeRanges(ranges: readonly (readonly [number, number])[], negated: boolean): [number, number][] {
  const sorted = ranges.map(([low, high]) => [low, high] as [number, number]).sort((a, b) => a[0] - b[0]);
  const merged: [number, number][] = [];
  for (const [low, high] of sorted) {
    const last = merged[merged.length - 1];
    if (last !== undefined && low <= last[1] + 1) last[1] = Math.max(last[1], high);
    else merged.push([low, high]);
  }
  if (!negated) return merged;
  const complement: [number, number][] = [];
  let next = 0;
  for (const [low, high] of merged) {
    if (low > next) complement.push([next, low - 1]);
    next = high + 1;
  }
  if (next <= MAX_CODE_POINT) complement.push([next, MAX_CODE_POINT]);
  return complement;
}

/** UTF-8 sequences matching exactly the code points in `ranges` (normalized), surrogates excluded. */
export function utf8Sequences(ranges: readonly (readonly [number, number])[]): ByteSequence[] {
  const out: ByteSequence[] = [];
  const lengthBounds: [number, number][] = [
    [0, 0x7f],
    [0x80, 0x7ff],
    [0x800, 0xd7ff],
    [0xe000, 0xffff],
    [0x10000, MAX_CODE_POINT],
  ];
  for (const [low, high] of ranges) {
    for (const [boundLow, boundHigh] of lengthBounds) {
      const from = Math.max(low, boundLow);
      const to = Math.min(high, boundHigh);
      if (from <= to) splitSameLength(from, to, out);
    }
  }
  return out;
}

/** [low, high] encode to the same length; split until every byte position is one contiguous range. */
function splitSameLength(low: number, high: number, out: ByteSequence[]): void {
  const length = encodedLength(low);
  for (let i = 1; i < length; i++) {
    const mask = (1 << (6 * i)) - 1;
    if ((low & ~mask) === (high & ~mask)) continue;
    if ((low & mask) !== 0) {
      splitSameLength(low, low | mask, out);
      splitSameLength((low | mask) + 1, high, out);
      return;
    }
    if ((high & mask) !== mask) {
      splitSameLength(low, (high & ~mask) - 1, out);
      splitSameLength(high & ~mask, high, out);
      return;
    }
  }
  const lowBytes = encodeCodePoint(low);
  const highBytes = encodeCodePoint(high);
  out.push(lowBytes.map((byte, i) => [byte, highBytes[i]] as const));
}

function encodedLength(codePoint: number): number {
  return codePoint < 0x80 ? 1 : codePoint < 0x800 ? 2 : codePoint < 0x10000 ? 3 : 4;
}

/** UTF-8 bytes of one code point (no surrogate check: callers exclude them). */
export function encodeCodePoint(codePoint: number): number[] {
  if (codePoint < 0x80) return [codePoint];
  if (codePoint < 0x800) return [0xc0 | (codePoint >> 6), 0x80 | (codePoint & 0x3f)];
  if (codePoint < 0x10000) return [0xe0 | (codePoint >> 12), 0x80 | ((codePoint >> 6) & 0x3f), 0x80 | (codePoint & 0x3f)];
  return [0xf0 | (codePoint >> 18), 0x80 | ((codePoint >> 12) & 0x3f), 0x80 | ((codePoint >> 6) & 0x3f), 0x80 | (codePoint & 0x3f)];
}
