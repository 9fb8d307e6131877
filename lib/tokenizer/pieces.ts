/**
 * The bytes each token decodes to, computed once per vocabulary, as llama.cpp's token_to_piece produces them
 * (REFERENCE.md "SentencePiece BPE tokenizer", decode). Decoding, the streaming decoder and the grammar masker
 * all read this one table.
 * @internal
 * @module
 */

/** GGUF `tokenizer.ggml.token_type` values. */
export enum TokenType {
  UNDEFINED = 0,
  NORMAL = 1,
  UNKNOWN = 2,
  CONTROL = 3,
  USER_DEFINED = 4,
  UNUSED = 5,
  BYTE = 6,
}

const SPACE_MARK = "\u2581";

/** Every token's piece: `bytes[offsets[id] .. offsets[id + 1])`, in the form decode gives with `special: true`. */
export class PieceTable {
  readonly bytes: Uint8Array;
  readonly offsets: Uint32Array;
  /** 1 for control and unknown tokens: their piece is empty unless special tokens are decoded. */
  readonly hidden: Uint8Array;
  /** Pieces that are whole UTF-8 on their own, decoded lazily; null when the piece is not. */
  private readonly texts: (string | null | undefined)[];

  constructor(tokens: readonly string[], types: Int32Array) {
    const encoder = new TextEncoder();
    const parts: Uint8Array[] = new Array(tokens.length);
    this.offsets = new Uint32Array(tokens.length + 1);
    this.hidden = new Uint8Array(tokens.length);
    let total = 0;
    for (let id = 0; id < tokens.length; id++) {
      parts[id] = pieceOf(tokens[id], types[id], encoder);
      if (types[id] === TokenType.CONTROL || types[id] === TokenType.UNKNOWN) this.hidden[id] = 1;
      total += parts[id].length;
      this.offsets[id + 1] = total;
    }
    this.bytes = new Uint8Array(total);
    for (let id = 0; id < tokens.length; id++) this.bytes.set(parts[id], this.offsets[id]);
    this.texts = new Array(tokens.length);
  }

  /** Bytes of `id`'s piece (0 for a hidden piece when `special` is false). */
  length(id: number, special: boolean): number {
    return special || this.hidden[id] === 0 ? this.offsets[id + 1] - this.offsets[id] : 0;
  }

  /** The piece as a string when it is complete UTF-8 by itself, else null. */
  text(id: number): string | null {
    let text = this.texts[id];
    if (text === undefined) {
      const start = this.offsets[id];
      const end = this.offsets[id + 1];
      text = isCompleteUtf8(this.bytes, start, end) ? strictDecoder.decode(this.bytes.subarray(start, end)) : null;
      this.texts[id] = text;
    }
    return text;
  }
}

const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** token_to_piece for SPM vocabularies, with special tokens shown. */
function pieceOf(token: string, type: number, encoder: { encode(text: string): Uint8Array }): Uint8Array {
  switch (type) {
    case TokenType.NORMAL:
      return encoder.encode(token.replaceAll(SPACE_MARK, " "));
    case TokenType.UNKNOWN:
    case TokenType.CONTROL:
    case TokenType.USER_DEFINED:
      return encoder.encode(token);
    case TokenType.BYTE:
      return Uint8Array.of(byteOfByteToken(token));
    default:
      return new Uint8Array(0); // unused and undefined tokens decode to nothing
  }
}

/** llama.cpp reads a byte token "<0xXX>" as strtol(text.substr(3, 2), 16), truncated to a byte. */
function byteOfByteToken(token: string): number {
  const digits = token.substring(3, 5);
  let at = 0;
  while (at < digits.length && /\s/.test(digits[at])) at++;
  let sign = 1;
  if (digits[at] === "-" || digits[at] === "+") sign = digits[at++] === "-" ? -1 : 1;
  let value = 0;
  for (; at < digits.length; at++) {
    const digit = parseInt(digits[at], 16);
    if (Number.isNaN(digit)) break;
    value = value * 16 + digit;
  }
  return (sign * value) & 0xff;
}

/** True when bytes[start..end) is valid UTF-8 that ends on a character boundary. */
function isCompleteUtf8(bytes: Uint8Array, start: number, end: number): boolean {
  let at = start;
  while (at < end) {
    const lead = bytes[at];
    if (lead < 0x80) {
      at++;
      continue;
    }
    const need = sequenceLength(lead);
    if (need === 0 || at + need > end) return false;
    if (!secondByteFits(lead, bytes[at + 1])) return false;
    for (let k = 2; k < need; k++) if ((bytes[at + k] & 0xc0) !== 0x80) return false;
    at += need;
  }
  return true;
}

/** Bytes in the UTF-8 sequence a lead byte starts; 0 for bytes that cannot start one. */
function sequenceLength(lead: number): number {
  if (lead >= 0xc2 && lead <= 0xdf) return 2;
  if (lead >= 0xe0 && lead <= 0xef) return 3;
  if (lead >= 0xf0 && lead <= 0xf4) return 4;
  return 0;
}

/** The Encoding Standard's bounds on the byte after a lead byte (no overlongs, surrogates or > U+10FFFF). */
function secondByteFits(lead: number, second: number): boolean {
  if (lead === 0xe0) return second >= 0xa0 && second <= 0xbf;
  if (lead === 0xed) return second >= 0x80 && second <= 0x9f;
  if (lead === 0xf0) return second >= 0x90 && second <= 0xbf;
  if (lead === 0xf4) return second >= 0x80 && second <= 0x8f;
  return second >= 0x80 && second <= 0xbf;
}

/**
 * How many bytes at the end of bytes[0..end) a UTF-8 decoder would still be holding: a valid but unfinished
 * sequence (at most 3 bytes). Cutting there and decoding the two parts separately gives exactly the text of
 * decoding them together, so a stream can emit everything before the cut now.
 */
export function unfinishedTailLength(bytes: Uint8Array, end: number): number {
  for (let k = 1; k <= 3 && k <= end; k++) {
    const byte = bytes[end - k];
    if ((byte & 0xc0) === 0x80) continue;
    const need = sequenceLength(byte);
    if (need === 0 || k >= need) return 0;
    if (k >= 2 && !secondByteFits(byte, bytes[end - k + 1])) return 0;
    return k;
  }
  return 0;
}
