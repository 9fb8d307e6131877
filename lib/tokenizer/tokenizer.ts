/**
 * Mixtral's tokenizer: SentencePiece BPE with byte fallback (GGUF `tokenizer.ggml.model = "llama"`), giving the
 * ids llama.cpp gives. Encoding runs in C++ (native/tokenizer/spm.cc); decoding and streaming run here over
 * per-token byte pieces computed once.
 *
 * @example
 * ```ts
 * const tokenizer = await Tokenizer.fromGguf("mixtral-8x7b-instruct.Q4_K_M.gguf");
 * tokenizer.encode("Hello world!");                 // Int32Array [1, 22557, 1526, 28808]
 * tokenizer.decode([1, 22557, 1526, 28808]);        // "Hello world!"
 * ```
 * @module
 */
import { ArgumentRangeError, ArgumentTypeError, MixtralError } from "../errors.js";
import { readGguf, type GgufMetadataEntry } from "../gguf/reader.js";
import { GgufValueType } from "../gguf/types.js";
import { native } from "../native.js";
import { PieceTable, TokenType, utf8Table } from "./pieces.js";
import { StreamingDecoder } from "./streaming-decoder.js";
import { checkBoolean, checkOptions, describeValue } from "../validate.js";

export { TokenType } from "./pieces.js";
export { StreamingDecoder } from "./streaming-decoder.js";

/**
 * A vocabulary the tokenizer cannot use. Codes: `TOKENIZER_UNSUPPORTED` (a tokenizer model other than "llama"),
 * `TOKENIZER_BAD_VOCABULARY` (duplicate tokens, mismatched arrays, NaN scores, special ids out of range),
 * `TOKENIZER_NO_BYTE_TOKEN` (text needs a byte fallback token the vocabulary lacks).
 * @example
 * ```ts
 * import { Tokenizer, TokenizerError } from "mixtral-native";
 * try { await Tokenizer.fromGguf("gpt2.gguf"); }
 * catch (err) { if (err instanceof TokenizerError && err.code === "TOKENIZER_UNSUPPORTED") console.error("not a SentencePiece model"); }
 * ```
 */
export class TokenizerError extends MixtralError {}

/**
 * Everything a SentencePiece BPE tokenizer is made of, as GGUF's `tokenizer.ggml.*` keys hold it: the input of
 * {@link Tokenizer.fromVocabulary}.
 * @example
 * ```ts
 * import { Tokenizer, TokenType, type TokenizerVocabulary } from "mixtral-native";
 * const vocabulary: TokenizerVocabulary = {
 *   tokens: ["<unk>", "<s>", "</s>", "▁a", "▁b", "▁ab"],
 *   scores: [0, 0, 0, -2, -3, -1],
 *   tokenTypes: [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL, TokenType.NORMAL, TokenType.NORMAL, TokenType.NORMAL],
 * };
 * Tokenizer.fromVocabulary(vocabulary).encode("a b", { addBos: false }); // Int32Array [3, 4]
 * ```
 */
export interface TokenizerVocabulary {
  /** `tokenizer.ggml.tokens`: token texts by id, with U+2581 for spaces and `<0xXX>` byte tokens. */
  tokens: readonly string[];
  /** `tokenizer.ggml.scores`: merge priority, higher merges first. Default 0 for every token. */
  scores?: ArrayLike<number>;
  /** `tokenizer.ggml.token_type` ({@link TokenType}). Default NORMAL for every token. */
  tokenTypes?: ArrayLike<number>;
  /** `tokenizer.ggml.bos_token_id`; null for none. Default 1, as llama.cpp assumes for this tokenizer model. */
  bosId?: number | null;
  /** `tokenizer.ggml.eos_token_id`; null for none. Default 2. */
  eosId?: number | null;
  /** `tokenizer.ggml.unknown_token_id`; null for none. Default 0. */
  unkId?: number | null;
  /** `tokenizer.ggml.add_bos_token`: encode's default for `addBos`. Default true. */
  addBos?: boolean;
  /** `tokenizer.ggml.add_eos_token`: encode's default for `addEos`. Default false. */
  addEos?: boolean;
  /** `tokenizer.ggml.add_space_prefix`: a space before the text (and after each special token). Default true. */
  addSpacePrefix?: boolean;
}

/**
 * Options of {@link Tokenizer.encode} and {@link Tokenizer.encodeAsync}.
 * @example
 * ```ts
 * const ids = model.tokenizer.encode("[INST] Hi [/INST]", { addBos: false });   // to append to a session's cache
 * const raw = model.tokenizer.encode("<s>[INST] Hi [/INST]", { addBos: false, special: true }); // "<s>" becomes id 1
 * ```
 */
export interface EncodeOptions {
  /** Put the BOS token first. Default: the file's `add_bos_token` (true for Mixtral). */
  addBos?: boolean;
  /** Put the EOS token last. Default: the file's `add_eos_token` (false for Mixtral). */
  addEos?: boolean;
  /**
   * Turn the texts of control tokens (`<s>`, `</s>`, `<unk>`) into their ids, as llama.cpp's parse-special.
   * Default false: user text can never inject a control token.
   */
  special?: boolean;
}

/**
 * Options of {@link Tokenizer.decode}, {@link Tokenizer.createDecoder} and the per-token lookups.
 * @example
 * ```ts
 * const { tokenizer } = model;
 * tokenizer.decode([1, 22557], { special: true });       // "<s> Hello"
 * tokenizer.decode([22557], { continuation: true });     // " Hello": it continues earlier text
 * ```
 */
export interface DecodeOptions {
  /** Show control and unknown tokens as their text (`<s>`); default false shows them as nothing. */
  special?: boolean;
  /**
   * The tokens continue text decoded earlier (a generation after a prompt), so the first piece keeps its
   * leading space. Default false: the space the encoder prefixed is removed, as SentencePiece does.
   */
  continuation?: boolean;
}

const VOCABULARY_KEYS = ["tokens", "scores", "tokenTypes", "bosId", "eosId", "unkId", "addBos", "addEos", "addSpacePrefix"] as const;
const ENCODE_KEYS = ["addBos", "addEos", "special"] as const;
const DECODE_KEYS = ["special", "continuation"] as const;

/** Inputs above this many UTF-16 units are encoded on a worker thread by {@link Tokenizer.encodeAsync}. */
const ASYNC_THRESHOLD = 16 * 1024;

const lossyDecoder = new TextDecoder("utf-8", { ignoreBOM: true });

type NativeHandle = InstanceType<ReturnType<typeof native>["TokenizerHandle"]>;

/**
 * Mixtral's tokenizer (SentencePiece BPE with byte fallback), giving the ids llama.cpp gives on the same
 * vocabulary. A loaded model has one ({@link Mixtral.tokenizer}); {@link Tokenizer.fromGguf} reads one from a
 * file's metadata without loading the weights.
 * @example
 * ```ts
 * import { Tokenizer } from "mixtral-native";
 * const tokenizer = await Tokenizer.fromGguf("mixtral-8x7b-instruct.Q4_K_M.gguf");
 * const ids = tokenizer.encode("Hello world!");  // Int32Array [1, 22557, 1526, 28808]
 * tokenizer.decode(ids);                         // "Hello world!"
 * tokenizer.tokenText(ids[1]);                   // "▁Hello"
 * ```
 */
export class Tokenizer {
  /** Number of tokens in the vocabulary. */
  readonly vocabSize: number;
  /** The BOS token id, or null when the vocabulary has none. */
  readonly bos: number | null;
  /** The EOS token id, or null when the vocabulary has none. */
  readonly eos: number | null;
  /** The unknown token id, or null. */
  readonly unk: number | null;
  /** Whether encode adds BOS unless told otherwise (the file's `add_bos_token`). */
  readonly addBos: boolean;
  /** Whether encode adds EOS unless told otherwise (the file's `add_eos_token`). */
  readonly addEos: boolean;
  /** Whether a space is put before the text, and one is removed from the start of decoded text. */
  readonly addSpacePrefix: boolean;

  private readonly tokens: readonly string[];
  private readonly types: Int32Array;
  private readonly pieces: PieceTable;
  private readonly handle: NativeHandle;
  private decodeBuffer = new Uint8Array(4096);

  private constructor(vocabulary: Required<TokenizerVocabulary>, types: Int32Array, pieces: PieceTable, handle: NativeHandle) {
    this.tokens = vocabulary.tokens;
    this.types = types;
    this.vocabSize = vocabulary.tokens.length;
    this.bos = vocabulary.bosId;
    this.eos = vocabulary.eosId;
    this.unk = vocabulary.unkId;
    this.addBos = vocabulary.addBos;
    this.addEos = vocabulary.addEos;
    this.addSpacePrefix = vocabulary.addSpacePrefix;
    this.pieces = pieces;
    this.handle = handle;
  }

  /**
   * Builds a tokenizer from vocabulary arrays. Empty token texts become `[EMPTY_<id>]` as in llama.cpp.
   * Throws TypeError/RangeError for malformed arguments and {@link TokenizerError} for an unusable vocabulary.
   */
  static fromVocabulary(vocabulary: TokenizerVocabulary): Tokenizer {
    if (vocabulary === undefined) throw new ArgumentTypeError("vocabulary must be an object; got undefined");
    checkOptions("vocabulary", vocabulary, VOCABULARY_KEYS);
    const { tokens } = vocabulary;
    if (!Array.isArray(tokens)) throw new ArgumentTypeError(`vocabulary.tokens must be an array of strings; got ${describeValue(tokens)}`);
    const count = tokens.length;
    if (count === 0) throw new ArgumentRangeError("vocabulary.tokens must not be empty");
    const texts: string[] = new Array(count);
    for (let id = 0; id < count; id++) {
      const token: unknown = tokens[id];
      if (typeof token !== "string") throw new ArgumentTypeError(`vocabulary.tokens[${id}] must be a string; got ${describeValue(token)}`);
      texts[id] = token === "" ? `[EMPTY_${id}]` : token;
    }
    const scores = toTypedArray("vocabulary.scores", vocabulary.scores, count, Float32Array, 0);
    for (let id = 0; id < count; id++) {
      if (Number.isNaN(scores[id])) throw new ArgumentRangeError(`vocabulary.scores[${id}] is NaN`);
    }
    const types = toTypedArray("vocabulary.tokenTypes", vocabulary.tokenTypes, count, Int32Array, TokenType.NORMAL);
    const bosId = tokenIdOption("vocabulary.bosId", vocabulary.bosId, 1, count);
    const eosId = tokenIdOption("vocabulary.eosId", vocabulary.eosId, 2, count);
    const unkId = tokenIdOption("vocabulary.unkId", vocabulary.unkId, 0, count);
    const addBos = booleanOption("vocabulary.addBos", vocabulary.addBos, true);
    const addEos = booleanOption("vocabulary.addEos", vocabulary.addEos, false);
    const addSpacePrefix = booleanOption("vocabulary.addSpacePrefix", vocabulary.addSpacePrefix, true);
    if (addBos && bosId === null) throw new TokenizerError("TOKENIZER_BAD_VOCABULARY", "addBos is true but the vocabulary has no BOS token");
    if (addEos && eosId === null) throw new TokenizerError("TOKENIZER_BAD_VOCABULARY", "addEos is true but the vocabulary has no EOS token");

    const utf8 = utf8Table(texts);
    let handle: NativeHandle;
    try {
      handle = new (native().TokenizerHandle)(utf8.bytes, utf8.offsets, scores, types, unkId ?? -1, addSpacePrefix);
    } catch (error) {
      throw toTokenizerError(error);
    }
    const pieces = new PieceTable(texts, utf8, types);
    return new Tokenizer({ tokens: texts, scores, tokenTypes: types, bosId, eosId, unkId, addBos, addEos, addSpacePrefix }, types, pieces, handle);
  }

  /**
   * Reads the tokenizer of a GGUF file: its metadata only, never the tensor data.
   * @throws {TypeError} for a bad path.
   * @throws {GgufError} when the file cannot be read or is malformed.
   * @throws {TokenizerError} `TOKENIZER_UNSUPPORTED` when `tokenizer.ggml.model` is not "llama" (SentencePiece
   * BPE), `TOKENIZER_BAD_VOCABULARY` when the tokenizer.* keys are missing, mistyped or inconsistent.
   */
  static async fromGguf(path: string): Promise<Tokenizer> {
    const file = await readGguf(path);
    return Tokenizer.fromGgufMetadata(file.metadata);
  }

  /** Builds the tokenizer from metadata already read with `readGguf` (the model does this). Errors as {@link fromGguf}. */
  static fromGgufMetadata(metadata: ReadonlyMap<string, GgufMetadataEntry>): Tokenizer {
    if (!(metadata instanceof Map)) throw new ArgumentTypeError(`metadata must be the Map readGguf returns; got ${describeValue(metadata)}`);
    const model = metadata.get("tokenizer.ggml.model");
    if (model === undefined) {
      throw new TokenizerError("TOKENIZER_UNSUPPORTED", "the file has no tokenizer: tokenizer.ggml.model is missing");
    }
    if (model.type !== GgufValueType.STRING || model.value !== "llama") {
      throw new TokenizerError(
        "TOKENIZER_UNSUPPORTED",
        `tokenizer.ggml.model is ${describeValue(model.value)}; only "llama" (SentencePiece BPE, Mixtral and Mistral) is supported`,
      );
    }
    const tokens = metadataArray(metadata, "tokenizer.ggml.tokens", [GgufValueType.STRING], true) as string[];
    const count = tokens.length;
    const scores = metadataArray(metadata, "tokenizer.ggml.scores", [GgufValueType.FLOAT32, GgufValueType.INT32], false) as
      | Float32Array
      | Int32Array
      | undefined;
    const tokenTypes = metadataArray(metadata, "tokenizer.ggml.token_type", [GgufValueType.INT32], false) as Int32Array | undefined;
    for (const [key, values] of [["tokenizer.ggml.scores", scores], ["tokenizer.ggml.token_type", tokenTypes]] as const) {
      if (values !== undefined && values.length < count) {
        throw new TokenizerError("TOKENIZER_BAD_VOCABULARY", `${key} has ${values.length} entries for ${count} tokens`);
      }
    }
    const vocabulary: TokenizerVocabulary = {
      tokens,
      scores: scores?.subarray(0, count),
      tokenTypes: tokenTypes?.subarray(0, count),
      bosId: metadataTokenId(metadata, "tokenizer.ggml.bos_token_id", 1, count),
      eosId: metadataTokenId(metadata, "tokenizer.ggml.eos_token_id", 2, count),
      unkId: metadataTokenId(metadata, "tokenizer.ggml.unknown_token_id", 0, count),
      addBos: metadataBoolean(metadata, "tokenizer.ggml.add_bos_token", true),
      addEos: metadataBoolean(metadata, "tokenizer.ggml.add_eos_token", false),
      addSpacePrefix: metadataBoolean(metadata, "tokenizer.ggml.add_space_prefix", true),
    };
    try {
      return Tokenizer.fromVocabulary(vocabulary);
    } catch (error) {
      if (error instanceof TokenizerError) throw error;
      throw new TokenizerError("TOKENIZER_BAD_VOCABULARY", `the file's vocabulary is unusable: ${(error as Error).message}`, { cause: error });
    }
  }

  /**
   * Encodes `text` to token ids, exactly as llama.cpp's `llama_tokenize` does on the same vocabulary.
   * Lone surrogates are encoded as U+FFFD, as they reach llama.cpp.
   */
  encode(text: string, options?: EncodeOptions): Int32Array {
    if (typeof text !== "string") throw new ArgumentTypeError(`text must be a string; got ${describeValue(text)}`);
    const [bosId, eosId, special] = this.encodeRequest(options);
    try {
      return this.handle.encode(text, bosId, eosId, special);
    } catch (error) {
      throw toTokenizerError(error);
    }
  }

  /** {@link encode} on a worker thread, for long texts, so the event loop stays free. Same ids. */
  async encodeAsync(text: string, options?: EncodeOptions): Promise<Int32Array> {
    if (typeof text !== "string") throw new ArgumentTypeError(`text must be a string; got ${describeValue(text)}`);
    const [bosId, eosId, special] = this.encodeRequest(options);
    try {
      if (text.length < ASYNC_THRESHOLD) return this.handle.encode(text, bosId, eosId, special);
      return await this.handle.encodeAsync(text, bosId, eosId, special);
    } catch (error) {
      throw toTokenizerError(error);
    }
  }

  /**
   * Decodes token ids to text: byte tokens are assembled into UTF-8 (invalid sequences become U+FFFD), U+2581
   * becomes a space, and one leading space is removed from the first piece that has text when the vocabulary
   * adds a space prefix. RangeError for an id outside `[0, vocabSize)`, naming it and its position.
   */
  decode(tokens: ArrayLike<number>, options?: DecodeOptions): string {
    if (!isIdList(tokens)) throw new ArgumentTypeError(`tokens must be an array or typed array of token ids; got ${describeValue(tokens)}`);
    checkOptions("options", options, DECODE_KEYS);
    const special = booleanOption("options.special", options?.special, false);
    const continuation = booleanOption("options.continuation", options?.continuation, false);
    const pieces = this.pieces;
    const count = tokens.length;
    let total = 0;
    for (let i = 0; i < count; i++) {
      const id = tokens[i];
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new ArgumentRangeError(`tokens[${i}] is ${String(id)}, not a token id in [0, ${this.vocabSize})`);
      }
      total += pieces.length(id, special);
    }
    if (total > this.decodeBuffer.length) this.decodeBuffer = new Uint8Array(Math.max(total, this.decodeBuffer.length * 2));
    const out = this.decodeBuffer;
    const source = pieces.bytes;
    let written = 0;
    let stripSpace = this.addSpacePrefix && !continuation;
    for (let i = 0; i < count; i++) {
      const id = tokens[i];
      const length = pieces.length(id, special);
      if (length === 0) continue;
      let at = pieces.offsets[id];
      const end = at + length;
      if (stripSpace) {
        stripSpace = false;
        if (source[at] === 0x20) at++;
      }
      while (at < end) out[written++] = source[at++];
    }
    return lossyDecoder.decode(out.subarray(0, written));
  }

  /** A decoder for tokens that arrive one at a time (generation); see {@link StreamingDecoder}. */
  createDecoder(options?: DecodeOptions): StreamingDecoder {
    checkOptions("options", options, DECODE_KEYS);
    const special = booleanOption("options.special", options?.special, false);
    const continuation = booleanOption("options.continuation", options?.continuation, false);
    return new StreamingDecoder(this.pieces, special, this.addSpacePrefix && !continuation, this.vocabSize);
  }

  /**
   * The text of one token alone, as llama.cpp's token_to_piece gives it (no leading space removed). A byte token
   * that is part of a longer character decodes to U+FFFD here; use {@link pieceBytes} for the exact bytes.
   */
  tokenToPiece(id: number, options?: DecodeOptions): string {
    this.checkId("id", id);
    checkOptions("options", options, DECODE_KEYS);
    const special = booleanOption("options.special", options?.special, false);
    const length = this.pieces.length(id, special);
    const start = this.pieces.offsets[id];
    return lossyDecoder.decode(this.pieces.bytes.subarray(start, start + length));
  }

  /** The exact bytes token `id` decodes to (a copy). */
  pieceBytes(id: number, options?: DecodeOptions): Uint8Array {
    this.checkId("id", id);
    checkOptions("options", options, DECODE_KEYS);
    const special = booleanOption("options.special", options?.special, false);
    const start = this.pieces.offsets[id];
    return this.pieces.bytes.slice(start, start + this.pieces.length(id, special));
  }

  /**
   * Every token's piece bytes without copies, for code that scans the whole vocabulary (the grammar masker):
   * token `id` is `bytes[offsets[id] .. offsets[id + 1])` in its `special: true` form; `hidden[id]` is 1 for
   * control and unknown tokens, whose piece is empty otherwise. Read-only: writing to it corrupts decoding.
   * @internal
   */
  pieceTable(): { readonly bytes: Uint8Array; readonly offsets: Uint32Array; readonly hidden: Uint8Array } {
    return { bytes: this.pieces.bytes, offsets: this.pieces.offsets, hidden: this.pieces.hidden };
  }

  /** The vocabulary's text for `id` (e.g. "▁Hello", "<0x0A>", "<s>"). */
  tokenText(id: number): string {
    this.checkId("id", id);
    return this.tokens[id];
  }

  /** The token type of `id` ({@link TokenType}). */
  tokenType(id: number): TokenType {
    this.checkId("id", id);
    const type = this.types[id];
    return type >= TokenType.UNDEFINED && type <= TokenType.BYTE ? type : TokenType.UNDEFINED;
  }

  private checkId(name: string, id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new ArgumentRangeError(`${name} must be a token id in [0, ${this.vocabSize}); got ${String(id)}`);
    }
  }

  private encodeRequest(options: EncodeOptions | undefined): [number, number, boolean] {
    checkOptions("options", options, ENCODE_KEYS);
    const addBos = booleanOption("options.addBos", options?.addBos, this.addBos);
    const addEos = booleanOption("options.addEos", options?.addEos, this.addEos);
    const special = booleanOption("options.special", options?.special, false);
    if (addBos && this.bos === null) throw new ArgumentRangeError("options.addBos is true but the vocabulary has no BOS token");
    if (addEos && this.eos === null) throw new ArgumentRangeError("options.addEos is true but the vocabulary has no EOS token");
    return [addBos ? this.bos! : -1, addEos ? this.eos! : -1, special];
  }
}

function booleanOption(name: string, value: unknown, fallback: boolean): boolean {
  return value === undefined ? fallback : checkBoolean(name, value);
}

function tokenIdOption(name: string, value: unknown, fallback: number, count: number): number | null {
  if (value === undefined) return fallback < count ? fallback : null;
  if (value === null) return null;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value >= count) {
    throw new ArgumentRangeError(`${name} must be a token id in [0, ${count}) or null; got ${describeValue(value)}`);
  }
  return value;
}

function toTypedArray<T extends Float32Array | Int32Array>(
  name: string,
  values: ArrayLike<number> | undefined,
  count: number,
  Type: { new (length: number): T },
  fallback: number,
): T {
  const out = new Type(count);
  if (values === undefined) {
    out.fill(fallback);
    return out;
  }
  if (!isIdList(values)) throw new ArgumentTypeError(`${name} must be an array or typed array of numbers; got ${describeValue(values)}`);
  if (values.length !== count) throw new ArgumentRangeError(`${name} has ${values.length} entries; the vocabulary has ${count} tokens`);
  for (let i = 0; i < count; i++) {
    const value = values[i];
    if (typeof value !== "number") throw new ArgumentTypeError(`${name}[${i}] must be a number; got ${describeValue(value)}`);
    out[i] = value;
  }
  return out;
}

function isIdList(value: unknown): value is ArrayLike<number> {
  return Array.isArray(value) || (ArrayBuffer.isView(value) && !(value instanceof DataView));
}

function metadataArray(
  metadata: ReadonlyMap<string, GgufMetadataEntry>,
  key: string,
  elementTypes: readonly GgufValueType[],
  required: boolean,
): string[] | Float32Array | Int32Array | undefined {
  const entry = metadata.get(key);
  if (entry === undefined) {
    if (required) throw new TokenizerError("TOKENIZER_BAD_VOCABULARY", `${key} is missing`);
    return undefined;
  }
  if (entry.type !== GgufValueType.ARRAY || entry.elementType === undefined || !elementTypes.includes(entry.elementType)) {
    const wanted = elementTypes.map((type) => GgufValueType[type]).join(" or ");
    const got = entry.type === GgufValueType.ARRAY ? `an array of ${GgufValueType[entry.elementType ?? -1] ?? "?"}` : GgufValueType[entry.type];
    throw new TokenizerError("TOKENIZER_BAD_VOCABULARY", `${key} must be an array of ${wanted}; the file has ${got}`);
  }
  if (required && (entry.value as ArrayLike<unknown>).length === 0) throw new TokenizerError("TOKENIZER_BAD_VOCABULARY", `${key} is empty`);
  return entry.value as string[] | Float32Array | Int32Array;
}

/** A special token id from the file: any integer type; absent means llama.cpp's default for this tokenizer. */
function metadataTokenId(metadata: ReadonlyMap<string, GgufMetadataEntry>, key: string, fallback: number, count: number): number | null {
  const entry = metadata.get(key);
  if (entry === undefined) return fallback < count ? fallback : null;
  const value = typeof entry.value === "bigint" ? Number(entry.value) : entry.value;
  const integerTypes = [GgufValueType.UINT8, GgufValueType.INT8, GgufValueType.UINT16, GgufValueType.INT16, GgufValueType.UINT32,
    GgufValueType.INT32, GgufValueType.UINT64, GgufValueType.INT64];
  if (!integerTypes.includes(entry.type) || typeof value !== "number") {
    throw new TokenizerError("TOKENIZER_BAD_VOCABULARY", `${key} must be an integer; the file has ${GgufValueType[entry.type]}`);
  }
  if (value < 0 || value >= count) {
    throw new TokenizerError("TOKENIZER_BAD_VOCABULARY", `${key} is ${String(entry.value)}, outside the vocabulary [0, ${count})`);
  }
  return value;
}

function metadataBoolean(metadata: ReadonlyMap<string, GgufMetadataEntry>, key: string, fallback: boolean): boolean {
  const entry = metadata.get(key);
  if (entry === undefined) return fallback;
  if (entry.type !== GgufValueType.BOOL) {
    throw new TokenizerError("TOKENIZER_BAD_VOCABULARY", `${key} must be a BOOL; the file has ${GgufValueType[entry.type]}`);
  }
  return entry.value as boolean;
}

function toTokenizerError(error: unknown): unknown {
  const code = (error as { code?: unknown } | null)?.code;
  if (error instanceof Error && typeof code === "string" && code.startsWith("TOKENIZER_")) {
    return new TokenizerError(code, error.message);
  }
  return error;
}
