import { beforeAll, describe, expect, it } from "vitest";

import { mkdirSync } from "node:fs";
import { join } from "node:path";

import { GgufError, MixtralError } from "../lib/errors.js";
import { readGguf } from "../lib/gguf/reader.js";
import { GgufValueType } from "../lib/gguf/types.js";
import { GgufWriter } from "../lib/gguf/writer.js";
import { Tokenizer, TokenizerError, TokenType } from "../lib/tokenizer/tokenizer.js";
import { loadMistralV1Vocabulary, type Vocabulary } from "../lib/testing/mistral-vocab.js";
import { cacheDir, mistralVocabGguf } from "./fixtures/vocab-gguf.js";

let vocab: Vocabulary;
let tokenizer: Tokenizer;

beforeAll(async () => {
  vocab = await loadMistralV1Vocabulary();
  tokenizer = Tokenizer.fromVocabulary(vocab);
});

/** A small vocabulary: the 256 byte tokens after <unk>, <s>, </s>, then a few merges. */
function tinyVocabulary(extra: Partial<Parameters<typeof Tokenizer.fromVocabulary>[0]> = {}) {
  const tokens = ["<unk>", "<s>", "</s>"];
  const tokenTypes = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
    tokenTypes.push(TokenType.BYTE);
  }
  for (const text of ["▁", "a", "b", "c", "ab", "▁a", "▁ab", "bc"]) {
    tokens.push(text);
    tokenTypes.push(TokenType.NORMAL);
  }
  const scores = tokens.map((_, id) => (id < 259 ? 0 : -id));
  return { tokens, tokenTypes, scores, ...extra };
}

describe("31 tokenizer API: encode", () => {
  it("matches the reference example: \"Hello world!\" is [1, 22557, 1526, 28808] with BOS", () => {
    expect(Array.from(tokenizer.encode("Hello world!"))).toEqual([1, 22557, 1526, 28808]);
  });

  it("returns an Int32Array and follows the file's add_bos/add_eos defaults unless overridden", () => {
    const ids = tokenizer.encode("Hello");
    expect(ids).toBeInstanceOf(Int32Array);
    expect(ids[0]).toBe(tokenizer.bos);
    expect(tokenizer.addBos).toBe(true);
    expect(tokenizer.addEos).toBe(false);
    expect(Array.from(tokenizer.encode("Hello", { addBos: false }))).toEqual(Array.from(ids).slice(1));
    expect(Array.from(tokenizer.encode("Hello", { addEos: true })).at(-1)).toBe(tokenizer.eos);
    const noBosByDefault = Tokenizer.fromVocabulary({ ...vocab, addBos: false, addEos: true });
    expect(Array.from(noBosByDefault.encode("Hello"))).toEqual([...Array.from(ids).slice(1), 2]);
  });

  it("encodes the empty string as [] without BOS and [bos] with it, like llama.cpp", () => {
    expect(Array.from(tokenizer.encode(""))).toEqual([1]);
    expect(Array.from(tokenizer.encode("", { addBos: false }))).toEqual([]);
    expect(Array.from(tokenizer.encode("", { addBos: false, addEos: true }))).toEqual([2]);
  });

  it("encodes a lone surrogate as U+FFFD (token 29137), as it reaches llama.cpp", () => {
    expect(Array.from(tokenizer.encode("a\uD800b", { addBos: false }))).toEqual(
      Array.from(tokenizer.encode("a\uFFFDb", { addBos: false })),
    );
    expect(Array.from(tokenizer.encode("\uDC00", { addBos: false }))).toContain(29137);
  });

  it("puts a space prefix after each parsed special token and none when the vocabulary turns it off", () => {
    expect(Array.from(tokenizer.encode("<s>x", { addBos: false, special: true }))).toEqual([1, ...tokenizer.encode("x", { addBos: false })]);
    const noPrefix = Tokenizer.fromVocabulary({ ...vocab, addSpacePrefix: false });
    expect(noPrefix.addSpacePrefix).toBe(false);
    expect(Array.from(noPrefix.encode("Hello", { addBos: false }))).toEqual([vocab.tokens.indexOf("Hello")]); // not "▁Hello"
    expect(noPrefix.decode(noPrefix.encode("Hello"))).toBe("Hello");
  });

  it("throws TypeError for a text that is not a string", () => {
    for (const bad of [undefined, null, 42, ["a"], { text: "a" }, new String("a"), Buffer.from("a")]) {
      expect(() => tokenizer.encode(bad as unknown as string)).toThrow(TypeError);
    }
    expect(() => tokenizer.encode(42 as unknown as string)).toThrow(/text must be a string; got 42$/);
  });

  it("throws TypeError for unknown or mistyped options, listing the valid ones", () => {
    expect(() => tokenizer.encode("a", { addBOS: true } as never)).toThrow(/unknown option "addBOS" \(did you mean "addBos"\?\); valid options: addBos, addEos, special/);
    expect(() => tokenizer.encode("a", { special: "yes" } as never)).toThrow(/options.special must be a boolean/);
    expect(() => tokenizer.encode("a", "special" as never)).toThrow(/options must be an object/);
    expect(() => tokenizer.encode("a", null as never)).toThrow(TypeError);
  });

  it("throws RangeError when asked for BOS or EOS that the vocabulary does not have", () => {
    const noSpecials = Tokenizer.fromVocabulary({ ...vocab, bosId: null, eosId: null, addBos: false });
    expect(noSpecials.bos).toBeNull();
    expect(() => noSpecials.encode("a", { addBos: true })).toThrow(RangeError);
    expect(() => noSpecials.encode("a", { addEos: true })).toThrow(RangeError);
  });

  it("encodeAsync resolves to encode's ids for short and long texts and rejects bad input", async () => {
    const long = "The router picks two experts per token. 混合专家。 🙂\n".repeat(2_000);
    expect(await tokenizer.encodeAsync(long)).toEqual(tokenizer.encode(long));
    expect(await tokenizer.encodeAsync("short", { addBos: false })).toEqual(tokenizer.encode("short", { addBos: false }));
    await expect(tokenizer.encodeAsync(7 as unknown as string)).rejects.toThrow(TypeError);
    await expect(tokenizer.encodeAsync("a", { bogus: 1 } as never)).rejects.toThrow(TypeError);
  });

  it("encodeAsync keeps the event loop free: a timer fires while a large text is encoded", async () => {
    const huge = "Sparse mixture of experts, 8 experts, top-2 routing. ".repeat(40_000); // ~2 MB
    const order: string[] = [];
    const timer = new Promise<void>((resolve) => setTimeout(() => { order.push("timer"); resolve(); }, 0));
    const ids = await tokenizer.encodeAsync(huge);
    order.push("encoded");
    await timer;
    // Had encodeAsync blocked, its promise would have settled before the timer got a turn.
    expect(order).toEqual(["timer", "encoded"]);
    expect(ids.length).toBe(tokenizer.encode(huge).length);
  });
});

describe("31 tokenizer API: decode and pieces", () => {
  it("decode accepts arrays and typed arrays and removes the space prefix once", () => {
    const ids = [1, 22557, 1526, 28808];
    expect(tokenizer.decode(ids)).toBe("Hello world!");
    expect(tokenizer.decode(Int32Array.from(ids))).toBe("Hello world!");
    expect(tokenizer.decode(Uint32Array.from(ids))).toBe("Hello world!");
    expect(tokenizer.decode([22557, 22557])).toBe("Hello Hello");
    expect(tokenizer.decode([])).toBe("");
  });

  it("decode hides control tokens unless special is set", () => {
    expect(tokenizer.decode([1, 22557, 2])).toBe("Hello");
    expect(tokenizer.decode([1, 22557, 2], { special: true })).toBe("<s> Hello</s>");
    expect(tokenizer.decode([0], { special: true })).toBe("<unk>");
  });

  it("decode assembles byte tokens into UTF-8 and shows broken sequences as U+FFFD", () => {
    const euro = [...Buffer.from("€")].map((b) => 3 + b);
    expect(tokenizer.decode([28705, ...euro])).toBe("€");
    expect(tokenizer.decode([28705, euro[0], euro[1]])).toBe("\uFFFD");
    expect(tokenizer.decode([28705, 3 + 0xff, ...euro])).toBe("\uFFFD€");
  });

  it("decode throws RangeError naming the bad id and its position", () => {
    expect(() => tokenizer.decode([1, 2, 32000])).toThrow(/tokens\[2\] is 32000, not a token id in \[0, 32000\)/);
    expect(() => tokenizer.decode([-1])).toThrow(/tokens\[0\] is -1/);
    expect(() => tokenizer.decode([5, 1.5])).toThrow(/tokens\[1\] is 1.5/);
    expect(() => tokenizer.decode([NaN])).toThrow(RangeError);
    expect(() => tokenizer.decode(["3"] as never)).toThrow(/tokens\[0\] is 3, not a token id/);
    expect(() => tokenizer.decode(new Float64Array([2.5]))).toThrow(RangeError);
  });

  it("decode throws TypeError for a non-array and for unknown options", () => {
    expect(() => tokenizer.decode("1 2" as never)).toThrow(TypeError);
    expect(() => tokenizer.decode(null as never)).toThrow(TypeError);
    expect(() => tokenizer.decode([1], { specail: true } as never)).toThrow(/did you mean "special"\?\); valid options: special, continuation/);
  });

  it("tokenToPiece, pieceBytes, tokenText and tokenType describe single tokens", () => {
    expect(tokenizer.tokenToPiece(22557)).toBe(" Hello");
    expect(tokenizer.tokenToPiece(1)).toBe("");
    expect(tokenizer.tokenToPiece(1, { special: true })).toBe("<s>");
    expect(Array.from(tokenizer.pieceBytes(3 + 0xe2))).toEqual([0xe2]);
    expect(tokenizer.tokenToPiece(3 + 0x0a)).toBe("\n");
    expect(tokenizer.tokenText(22557)).toBe("▁Hello");
    expect(tokenizer.tokenType(1)).toBe(TokenType.CONTROL);
    expect(tokenizer.tokenType(3)).toBe(TokenType.BYTE);
    expect(tokenizer.tokenType(22557)).toBe(TokenType.NORMAL);
    expect(() => tokenizer.tokenToPiece(32000)).toThrow(RangeError);
    expect(() => tokenizer.pieceBytes(-1)).toThrow(RangeError);
    const copy = tokenizer.pieceBytes(22557);
    copy[0] = 0x41;
    expect(tokenizer.tokenToPiece(22557)).toBe(" Hello");
  });

  it("pieceTable exposes every piece without copies, in the special form", () => {
    const { bytes, offsets, hidden } = tokenizer.pieceTable();
    expect(offsets.length).toBe(tokenizer.vocabSize + 1);
    expect(Buffer.from(bytes.subarray(offsets[22557], offsets[22558])).toString()).toBe(" Hello");
    expect(Buffer.from(bytes.subarray(offsets[1], offsets[2])).toString()).toBe("<s>");
    expect(hidden[1]).toBe(1);
    expect(hidden[22557]).toBe(0);
  });

  it("bos, eos, unk and vocabSize come from the vocabulary", () => {
    expect([tokenizer.bos, tokenizer.eos, tokenizer.unk, tokenizer.vocabSize]).toEqual([1, 2, 0, 32000]);
  });
});

describe("31 tokenizer API: streaming decoder", () => {
  it("holds the bytes of one character split over several pushes and never emits broken UTF-8", () => {
    const decoder = tokenizer.createDecoder();
    const emoji = [...Buffer.from("🦙")].map((b) => 3 + b); // not in the vocabulary: four byte tokens
    expect(decoder.push(22557)).toBe("Hello");
    expect(decoder.push(28705)).toBe(" ");
    expect(decoder.push(emoji[0])).toBe("");
    expect(decoder.hasPendingBytes).toBe(true);
    expect(decoder.push(emoji[1])).toBe("");
    expect(decoder.push(emoji[2])).toBe("");
    expect(decoder.push(emoji[3])).toBe("🦙");
    expect(decoder.hasPendingBytes).toBe(false);
    expect(decoder.flush()).toBe("");
  });

  it("removes the first piece's leading space exactly as decode does, also after hidden tokens", () => {
    const decoder = tokenizer.createDecoder();
    expect(decoder.push(1)).toBe("");
    expect(decoder.push(22557)).toBe("Hello");
    expect(decoder.push(1526)).toBe(" world");
    expect(tokenizer.decode([1, 22557, 1526])).toBe("Hello world");
    const special = tokenizer.createDecoder({ special: true });
    expect(special.push(1) + special.push(22557)).toBe(tokenizer.decode([1, 22557], { special: true }));
  });

  it("flush turns an unfinished character into U+FFFD, as decode shows it", () => {
    const decoder = tokenizer.createDecoder();
    const euro = [...Buffer.from("€")].map((b) => 3 + b);
    expect(decoder.push(euro[0]) + decoder.push(euro[1])).toBe("");
    expect(decoder.flush()).toBe(tokenizer.decode([euro[0], euro[1]]));
    expect(decoder.flush()).toBe("");
  });

  it("an invalid byte ends a pending character at once, as a whole-text decoder would", () => {
    const decoder = tokenizer.createDecoder();
    expect(decoder.push(3 + 0xe2)).toBe("");
    expect(decoder.push(3 + 0x41)).toBe("\uFFFDA");
  });

  it("push throws RangeError naming a bad id; createDecoder validates its options", () => {
    const decoder = tokenizer.createDecoder();
    decoder.push(22557);
    expect(() => decoder.push(32000)).toThrow(/token 32000 \(push #1\)/);
    expect(() => decoder.push(0.5)).toThrow(RangeError);
    expect(() => tokenizer.createDecoder({ speical: true } as never)).toThrow(TypeError);
  });
});

describe("31 tokenizer API: building from a vocabulary", () => {
  it("builds a small vocabulary and merges by score", () => {
    const tiny = Tokenizer.fromVocabulary(tinyVocabulary());
    const id = (text: string) => tinyVocabulary().tokens.indexOf(text);
    expect(Array.from(tiny.encode("abc", { addBos: false }))).toEqual([id("▁ab"), id("c")]);
    expect(tiny.decode(tiny.encode("abc"))).toBe("abc");
    expect(Array.from(tiny.encode("d", { addBos: false }))).toEqual([id("▁"), 3 + 0x64]);
  });

  it("refuses duplicate token texts with TokenizerError TOKENIZER_BAD_VOCABULARY", () => {
    const vocabulary = tinyVocabulary();
    vocabulary.tokens[vocabulary.tokens.length - 1] = "ab";
    let error: unknown;
    try {
      Tokenizer.fromVocabulary(vocabulary);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(TokenizerError);
    expect(error).toBeInstanceOf(MixtralError);
    expect((error as TokenizerError).code).toBe("TOKENIZER_BAD_VOCABULARY");
    expect((error as Error).message).toMatch(/tokens 263 and 266 have the same text/);
  });

  it("names empty tokens [EMPTY_<id>] as llama.cpp does", () => {
    const vocabulary = tinyVocabulary();
    vocabulary.tokens[vocabulary.tokens.length - 1] = "";
    const tiny = Tokenizer.fromVocabulary(vocabulary);
    expect(tiny.tokenText(vocabulary.tokens.length - 1)).toBe(`[EMPTY_${vocabulary.tokens.length - 1}]`);
  });

  it("rejects malformed vocabulary arguments with TypeError or RangeError", () => {
    expect(() => Tokenizer.fromVocabulary(null as never)).toThrow(TypeError);
    expect(() => Tokenizer.fromVocabulary({ tokens: "abc" } as never)).toThrow(TypeError);
    expect(() => Tokenizer.fromVocabulary({ tokens: [] })).toThrow(RangeError);
    expect(() => Tokenizer.fromVocabulary({ tokens: ["a", 3] } as never)).toThrow(/tokens\[1\] must be a string/);
    expect(() => Tokenizer.fromVocabulary({ ...tinyVocabulary(), scores: [1, 2] })).toThrow(/scores has 2 entries/);
    expect(() => Tokenizer.fromVocabulary({ ...tinyVocabulary(), scores: tinyVocabulary().scores.map(() => NaN) })).toThrow(/NaN/);
    expect(() => Tokenizer.fromVocabulary({ ...tinyVocabulary(), bosId: 10_000 })).toThrow(/bosId must be a token id/);
    expect(() => Tokenizer.fromVocabulary({ ...tinyVocabulary(), merges: [] } as never)).toThrow(/unknown option "merges"/);
    expect(() => Tokenizer.fromVocabulary({ ...tinyVocabulary(), addBos: "yes" } as never)).toThrow(TypeError);
    expect(() => Tokenizer.fromVocabulary({ ...tinyVocabulary(), bosId: null })).toThrow(TokenizerError);
  });

  it("fails with TOKENIZER_NO_BYTE_TOKEN when a character has neither a token nor a byte fallback", () => {
    const tiny = Tokenizer.fromVocabulary({ tokens: ["▁", "a"], bosId: null, eosId: null, unkId: null, addBos: false });
    expect(Array.from(tiny.encode("a"))).toEqual([0, 1]);
    expect(() => tiny.encode("b")).toThrow(expect.objectContaining({ code: "TOKENIZER_NO_BYTE_TOKEN" }));
    const withUnk = Tokenizer.fromVocabulary({ tokens: ["<unk>", "▁", "a"], tokenTypes: [2, 1, 1], bosId: null, eosId: null, unkId: 0, addBos: false });
    expect(Array.from(withUnk.encode("b"))).toEqual([1, 0]);
  });
});

describe("31 tokenizer API: building from a GGUF file", () => {
  const dir = join(cacheDir, "api");

  /** A small GGUF with the tiny vocabulary's tokenizer keys, changed by `edit`. */
  async function tinyGguf(name: string, edit: (writer: GgufWriter) => void = () => {}): Promise<string> {
    mkdirSync(dir, { recursive: true });
    const vocabulary = tinyVocabulary();
    const writer = new GgufWriter();
    writer.set("general.architecture", GgufValueType.STRING, "llama");
    writer.set("tokenizer.ggml.model", GgufValueType.STRING, "llama");
    writer.set("tokenizer.ggml.tokens", GgufValueType.ARRAY, vocabulary.tokens, GgufValueType.STRING);
    writer.set("tokenizer.ggml.scores", GgufValueType.ARRAY, Float32Array.from(vocabulary.scores), GgufValueType.FLOAT32);
    writer.set("tokenizer.ggml.token_type", GgufValueType.ARRAY, Int32Array.from(vocabulary.tokenTypes), GgufValueType.INT32);
    edit(writer);
    const path = join(dir, `${name}-${process.pid}.gguf`);
    await writer.write(path);
    return path;
  }

  async function codeOf(work: Promise<unknown>): Promise<string> {
    const error = await work.then(() => undefined, (caught: unknown) => caught);
    expect(error).toBeInstanceOf(MixtralError);
    return (error as MixtralError).code;
  }

  it("reads the Mistral v1 tokenizer from a vocab-only GGUF and encodes like fromVocabulary", async () => {
    const fromFile = await Tokenizer.fromGguf(await mistralVocabGguf());
    expect([fromFile.vocabSize, fromFile.bos, fromFile.eos, fromFile.unk, fromFile.addBos, fromFile.addSpacePrefix]).toEqual([32000, 1, 2, 0, true, true]);
    expect(Array.from(fromFile.encode("Hello world!"))).toEqual([1, 22557, 1526, 28808]);
    const text = "Mixtral: 8 experts, top-2 routing. 混合专家 🙂 <s>";
    expect(fromFile.encode(text, { special: true })).toEqual(tokenizer.encode(text, { special: true }));
    const metadata = (await readGguf(await mistralVocabGguf())).metadata;
    expect(Tokenizer.fromGgufMetadata(metadata).encode(text)).toEqual(tokenizer.encode(text));
  });

  it("takes llama.cpp's defaults when the optional keys are absent and the file's flags when present", async () => {
    const defaults = await Tokenizer.fromGguf(await tinyGguf("defaults"));
    expect([defaults.bos, defaults.eos, defaults.unk, defaults.addBos, defaults.addEos, defaults.addSpacePrefix]).toEqual([1, 2, 0, true, false, true]);
    const flags = await Tokenizer.fromGguf(
      await tinyGguf("flags", (w) => {
        w.set("tokenizer.ggml.add_bos_token", GgufValueType.BOOL, false);
        w.set("tokenizer.ggml.add_eos_token", GgufValueType.BOOL, true);
        w.set("tokenizer.ggml.add_space_prefix", GgufValueType.BOOL, false);
        w.set("tokenizer.ggml.eos_token_id", GgufValueType.UINT32, 1);
      }),
    );
    expect([flags.addBos, flags.addEos, flags.addSpacePrefix, flags.eos]).toEqual([false, true, false, 1]);
    expect(Array.from(flags.encode("ab"))).toEqual([tinyVocabulary().tokens.indexOf("ab"), 1]);
    const intScores = await Tokenizer.fromGguf(
      await tinyGguf("int-scores", (w) => w.set("tokenizer.ggml.scores", GgufValueType.ARRAY, Int32Array.from(tinyVocabulary().scores), GgufValueType.INT32)),
    );
    expect(intScores.encode("abc")).toEqual(defaults.encode("abc"));
  });

  it("refuses a tokenizer model other than llama with TOKENIZER_UNSUPPORTED naming it", async () => {
    const path = await tinyGguf("gpt2", (w) => w.set("tokenizer.ggml.model", GgufValueType.STRING, "gpt2"));
    await expect(Tokenizer.fromGguf(path)).rejects.toThrow(/tokenizer.ggml.model is "gpt2"; only "llama"/);
    expect(await codeOf(Tokenizer.fromGguf(path))).toBe("TOKENIZER_UNSUPPORTED");
    await expect(Tokenizer.fromGguf(path)).rejects.toBeInstanceOf(TokenizerError);
  });

  it("refuses a file without a tokenizer with TOKENIZER_UNSUPPORTED", async () => {
    mkdirSync(dir, { recursive: true });
    const writer = new GgufWriter().set("general.architecture", GgufValueType.STRING, "llama");
    const path = join(dir, `no-tokenizer-${process.pid}.gguf`);
    await writer.write(path);
    expect(await codeOf(Tokenizer.fromGguf(path))).toBe("TOKENIZER_UNSUPPORTED");
  });

  it("refuses inconsistent tokenizer keys with TOKENIZER_BAD_VOCABULARY", async () => {
    const cases: [string, (w: GgufWriter) => void, RegExp][] = [
      ["bos-out-of-range", (w) => w.set("tokenizer.ggml.bos_token_id", GgufValueType.UINT32, 100_000), /bos_token_id is 100000, outside/],
      ["scores-as-u8", (w) => w.set("tokenizer.ggml.scores", GgufValueType.ARRAY, new Uint8Array(267), GgufValueType.UINT8), /scores must be an array of FLOAT32 or INT32/],
      ["short-types", (w) => w.set("tokenizer.ggml.token_type", GgufValueType.ARRAY, new Int32Array(3), GgufValueType.INT32), /token_type has 3 entries for 267 tokens/],
      ["tokens-as-string", (w) => w.set("tokenizer.ggml.tokens", GgufValueType.STRING, "abc"), /tokens must be an array of STRING/],
      ["add-bos-as-int", (w) => w.set("tokenizer.ggml.add_bos_token", GgufValueType.UINT8, 1), /add_bos_token must be a BOOL/],
      ["nan-score", (w) => w.set("tokenizer.ggml.scores", GgufValueType.ARRAY, new Float32Array(267).fill(NaN), GgufValueType.FLOAT32), /NaN/],
      ["duplicate", (w) => w.set("tokenizer.ggml.tokens", GgufValueType.ARRAY, tinyVocabulary().tokens.map((t) => (t === "bc" ? "ab" : t)), GgufValueType.STRING), /same text/],
    ];
    for (const [name, edit, message] of cases) {
      const path = await tinyGguf(name, edit);
      await expect(Tokenizer.fromGguf(path), name).rejects.toThrow(message);
      expect(await codeOf(Tokenizer.fromGguf(path)), name).toBe("TOKENIZER_BAD_VOCABULARY");
    }
  });

  it("passes GgufError through for unreadable files and TypeError for bad arguments", async () => {
    await expect(Tokenizer.fromGguf(join(dir, "does-not-exist.gguf"))).rejects.toBeInstanceOf(GgufError);
    await expect(Tokenizer.fromGguf(42 as never)).rejects.toThrow(TypeError);
    expect(() => Tokenizer.fromGgufMetadata({} as never)).toThrow(TypeError);
  });
});
