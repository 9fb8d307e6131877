/**
 * Token byte pieces of the real Mistral v1 vocabulary, as the masker needs them: `▁` → space, `<0xXX>` → that
 * byte, control and unknown tokens → empty (never allowed). The tokenizer module will expose the same pieces.
 */
import { TokenType, loadMistralV1Vocabulary } from "../../lib/testing/mistral-vocab.js";

export interface MistralPieces {
  pieces: Uint8Array[];
  eosId: number;
  bosId: number;
  /** Token id of each byte-fallback token `<0xXX>`, indexed by the byte. */
  byteTokens: Int32Array;
  /** The first normal token whose piece is exactly `text` (UTF-8), or -1. */
  tokenOf(text: string): number;
}

let cached: Promise<MistralPieces> | undefined;

export function loadMistralPieces(): Promise<MistralPieces> {
  cached ??= build();
  return cached;
}

async function build(): Promise<MistralPieces> {
  const vocabulary = await loadMistralV1Vocabulary();
  const encoder = new TextEncoder();
  const byteTokens = new Int32Array(256).fill(-1);
  const pieces = vocabulary.tokens.map((token, id) => {
    const type = vocabulary.tokenTypes[id];
    if (type === TokenType.CONTROL || type === TokenType.UNKNOWN) return new Uint8Array(0);
    if (type === TokenType.BYTE) {
      const byte = parseInt(token.slice(3, 5), 16);
      byteTokens[byte] = id;
      return Uint8Array.of(byte);
    }
    return encoder.encode(token.replaceAll("\u2581", " "));
  });
  const byText = new Map<string, number>();
  pieces.forEach((piece, id) => {
    if (vocabulary.tokenTypes[id] !== TokenType.NORMAL) return;
    const key = Buffer.from(piece).toString("latin1");
    if (!byText.has(key)) byText.set(key, id);
  });
  return {
    pieces,
    eosId: vocabulary.eosId,
    bosId: vocabulary.bosId,
    byteTokens,
    tokenOf: (text) => byText.get(Buffer.from(encoder.encode(text)).toString("latin1")) ?? -1,
  };
}
