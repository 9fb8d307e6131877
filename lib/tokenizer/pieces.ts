/**
 * The bytes each token decodes to, computed once per vocabulary, as llama.cpp's token_to_piece produces them
 * (REFERENCE.md "SentencePiece BPE tokenizer", decode). Decoding, the streaming decoder and the grammar masker
 * all read this one table.
 * @internal
 * @module
 */

/**
 * GGUF `tokenizer.ggml.token_type` values: what {@link Tokenizer.tokenType} returns and
 * {@link TokenizerVocabulary.tokenTypes} holds.
 * @example
 * ```ts
 * import { TokenType } from "mixtral-native";
 * const { tokenizer } = model;
 * tokenizer.tokenType(1) === TokenType.CONTROL; // true: <s>
 * tokenizer.tokenType(13);                     // TokenType.BYTE: <0x0A>
 * ```
 */
export enum TokenType {
  UNDEFINED = 0,
  NORMAL = 1,
  UNKNOWN = 2,
  CONTROL = 3,
  USER_DEFINED = 4,
  UNUSED = 5,
  BYTE = 6,
}

/** Strings as one UTF-8 arena: string i is `bytes[offsets[i] .. offsets[i + 1])`. */
export function utf8Table(strings: readonly string[]): { bytes: Uint8Array; offsets: Uint32Array } {
  const offsets = new Uint32Array(strings.length + 1);
  for (let i = 0; i < strings.length; i++) offsets[i + 1] = offsets[i] + Buffer.byteLength(strings[i], "utf8");
  const joined = Buffer.from(strings.join(""), "utf8");
  if (joined.length === offsets[strings.length]) return { bytes: new Uint8Array(joined.buffer, joined.byteOffset, joined.length), offsets };
  // A lone surrogate at the end of one string paired with the start of the next: encode one by one.
  const bytes = new Uint8Array(offsets[strings.length]);
  for (let i = 0; i < strings.length; i++) bytes.set(Buffer.from(strings[i], "utf8"), offsets[i]);
  return { bytes, offsets };
}

/** Every token's piece: `bytes[offsets[id] .. offsets[id + 1])`, in the form decode gives with `special: true`. */
export class PieceTable {
  readonly bytes: Uint8Array;
  readonly offsets: Uint32Array;
  /** 1 for control and unknown tokens: their piece is empty unless special tokens are decoded. */
  readonly hidden: Uint8Array;
  /** Pieces that are whole UTF-8 on their own, decoded lazily; null when the piece is not. */
  private readonly texts: (string | null | undefined)[];

  /** `texts` holds the token texts as {@link utf8Table} lays them out. */
  constructor(tokens: readonly string[], texts: { bytes: Uint8Array; offsets: Uint32Array }, types: Int32Array) {
    const count = tokens.length;
    this.bytes = new Uint8Array(texts.bytes.length); // pieces are never longer than their token text
    this.offsets = new Uint32Array(count + 1);
    this.hidden = new Uint8Array(count);
    const source = texts.bytes;
    const out = this.bytes;
    let written = 0;
    for (let id = 0; id < count; id++) {
      const start = texts.offsets[id];
      const end = texts.offsets[id + 1];
      switch (types[id]) {
        case TokenType.NORMAL:
          // U+2581 (E2 96 81) becomes a space.
          for (let at = start; at < end; ) {
            if (source[at] === 0xe2 && at + 2 < end && source[at + 1] === 0x96 && source[at + 2] === 0x81) {
              out[written++] = 0x20;
              at += 3;
            } else {
              out[written++] = source[at++];
            }
          }
          break;
        case TokenType.UNKNOWN:
        case TokenType.CONTROL:
          this.hidden[id] = 1;
          out.set(source.subarray(start, end), written);
          written += end - start;
          break;
        case TokenType.USER_DEFINED:
          out.set(source.subarray(start, end), written);
          written += end - start;
          break;
        case TokenType.BYTE:
          out[written++] = byteOfByteToken(tokens[id]);
          break;
        default:
          break; // unused and undefined tokens decode to nothing
      }
      this.offsets[id + 1] = written;
    }
    this.texts = new Array(count);
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
