/**
 * Token-at-a-time decoding that never splits a UTF-8 character: bytes of an unfinished character wait for the
 * next push. The text of all pushes plus {@link StreamingDecoder.flush} equals `decode` of the same tokens.
 * @module
 */
import { ArgumentRangeError } from "../errors.js";
import { unfinishedTailLength, type PieceTable } from "./pieces.js";

const lossyDecoder = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * Created by `tokenizer.createDecoder()`.
 *
 * @example
 * ```ts
 * const decoder = tokenizer.createDecoder();
 * for (const token of generated) process.stdout.write(decoder.push(token));
 * process.stdout.write(decoder.flush());
 * ```
 */
export class StreamingDecoder {
  private readonly pieces: PieceTable;
  private readonly special: boolean;
  private readonly vocabSize: number;
  /** Strip one leading space from the first non-empty piece, as decode does. */
  private stripSpace: boolean;
  private pending = new Uint8Array(64);
  private pendingLength = 0;
  private pushed = 0;

  /** @internal Use `tokenizer.createDecoder()`. */
  constructor(pieces: PieceTable, special: boolean, stripSpace: boolean, vocabSize: number) {
    this.pieces = pieces;
    this.special = special;
    this.stripSpace = stripSpace;
    this.vocabSize = vocabSize;
  }

  /** Adds one token; returns the text it completes (possibly ""). RangeError for an id outside the vocabulary. */
  push(token: number): string {
    if (!Number.isInteger(token) || token < 0 || token >= this.vocabSize) {
      throw new ArgumentRangeError(`token ${String(token)} (push #${this.pushed}) is not a token id in [0, ${this.vocabSize})`);
    }
    this.pushed++;
    const pieces = this.pieces;
    let length = pieces.length(token, this.special);
    if (length === 0) return "";
    let start = pieces.offsets[token];
    let skipped = 0;
    if (this.stripSpace) {
      this.stripSpace = false;
      if (pieces.bytes[start] === 0x20) {
        start++;
        length--;
        skipped = 1;
        if (length === 0) return "";
      }
    }
    if (this.pendingLength === 0) {
      const text = pieces.text(token);
      if (text !== null) return skipped === 0 ? text : text.slice(1);
    }
    const total = this.pendingLength + length;
    if (total > this.pending.length) {
      const grown = new Uint8Array(Math.max(total, this.pending.length * 2));
      grown.set(this.pending.subarray(0, this.pendingLength));
      this.pending = grown;
    }
    this.pending.set(pieces.bytes.subarray(start, start + length), this.pendingLength);
    const tail = unfinishedTailLength(this.pending, total);
    const text = total - tail > 0 ? lossyDecoder.decode(this.pending.subarray(0, total - tail)) : "";
    this.pending.copyWithin(0, total - tail, total);
    this.pendingLength = tail;
    return text;
  }

  /** Ends the stream: bytes of an unfinished character come out as U+FFFD, as decode shows them. */
  flush(): string {
    if (this.pendingLength === 0) return "";
    const text = lossyDecoder.decode(this.pending.subarray(0, this.pendingLength));
    this.pendingLength = 0;
    return text;
  }

  /** True while bytes of an unfinished character are waiting. */
  get hasPendingBytes(): boolean {
    return this.pendingLength > 0;
  }
}
