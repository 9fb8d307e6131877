/**
 * Chat: a conversation over one session, formatted with the model's chat template, that keeps the KV cache
 * between turns (only new tokens are evaluated) and drops the oldest turns when the context fills up.
 * @module
 */
import { ChatFormatter, checkMessages, withSafePrompt, type ChatMessage, type RenderedPrompt } from "./chat-template.js";
import { attachJson, resolveConstraint, type Constraint } from "./constrained.js";
import { AbortError, ArgumentRangeError, ContextOverflowError, DisposedError } from "./errors.js";
import type { Grammar, JsonGrammar } from "./grammar/grammar.js";
import type { JsonSchema, JsonSchemaToType } from "./grammar/types.js";
import { SAMPLING_OPTION_NAMES, resolveSamplingOptions, type SamplingOptions } from "./sampling/index.js";
import type { GenerateOptions, GeneratedToken, RoutingStats, Session } from "./session.js";
import type { Tokenizer } from "./tokenizer/tokenizer.js";
import { checkBoolean, checkChoice, checkFunction, checkInteger, checkOptions, checkSignal, checkStops, checkString } from "./validate.js";

/**
 * What a chat does when a turn (prompt plus `maxTokens`) does not fit in its context.
 * @example
 * ```ts
 * const strict = model.createChat({ contextShift: "error" }); // throw ContextOverflowError instead of dropping turns
 * ```
 */
export type ContextShiftStrategy = "error" | "drop-oldest-turns";

/**
 * Options of {@link Mixtral.createChat}.
 * @example
 * ```ts
 * const chat = model.createChat({ systemPrompt: "Be brief.", contextSize: 8192, safePrompt: true });
 * ```
 */
export interface ChatOptions {
  /** The first message of the conversation, with role "system". Default none. */
  systemPrompt?: string;
  /** Positions the chat's KV cache holds. Default min(model context, 4096). */
  contextSize?: number;
  /** Tokens per prefill chunk (abort is checked between chunks and layers). Default 512. */
  batchSize?: number;
  /** KV cache element type. Default "f16". */
  kvCacheType?: "f16" | "f32";
  /** A Jinja chat template used instead of the file's `tokenizer.chat_template` (or the built-in one). */
  template?: string;
  /**
   * "drop-oldest-turns" (default): when a turn would not fit, the oldest user/assistant exchanges are dropped
   * (the system prompt stays) until it does. "error": throw ContextOverflowError instead.
   */
  contextShift?: ContextShiftStrategy;
  /** Prepend Mistral's guardrail ({@link MISTRAL_SAFE_PROMPT}) to the system prompt. Default false. */
  safePrompt?: boolean;
  /** Experts per token for this chat's turns (1 … the load-time value). Default: the model's. */
  expertsPerToken?: number;
}

export const CHAT_OPTION_KEYS = [
  "systemPrompt", "contextSize", "batchSize", "kvCacheType", "template", "contextShift", "safePrompt", "expertsPerToken",
] as const;

/**
 * Options of {@link Chat.send} and {@link Chat.stream}: sampling, limits and stopping.
 * @example
 * ```ts
 * await chat.send("Name a colour.", { temperature: 0.7, topP: 0.9, seed: 1, maxTokens: 16, stop: ["\n"] });
 * ```
 */
export interface ChatSendOptions extends SamplingOptions {
  /** Most tokens to generate. Default 256. The turn needs room for its prompt plus this many tokens. */
  maxTokens?: number;
  /** Text that ends the reply when it appears; it is not emitted or recorded, even when split across tokens. */
  stop?: string | readonly string[];
  /** Stops the turn (during prefill or decoding): the result has stopReason "abort". */
  signal?: AbortSignal;
  /** Called after each evaluation (the prompt, then every generated token) with each layer's experts and weights. */
  onRouting?: (layer: number, experts: readonly number[], weights: readonly number[]) => void;
  /**
   * Constrain the reply to a grammar: GBNF text or a {@link Grammar}. The grammar matches the reply's text as
   * the result shows it (the word-boundary space before the first word is not part of it, so
   * `root ::= "yes" | "no"` lets the model answer with its usual `▁yes` token). The turn ends with stopReason
   * "eos" once the reply is complete and cannot grow. Not with `jsonSchema`. See docs/grammar.md.
   */
  grammar?: string | Grammar;
  /** Constrain the reply to JSON satisfying this schema; the result's `json` is typed from a const schema. */
  jsonSchema?: JsonSchema;
}

export const CHAT_SEND_OPTION_KEYS: readonly (keyof ChatSendOptions)[] = [
  ...SAMPLING_OPTION_NAMES, "maxTokens", "stop", "signal", "onRouting", "grammar", "jsonSchema",
];

/**
 * {@link ChatSendOptions} with a JSON schema `S`: the result's `json` has type `JsonSchemaToType<S>`.
 * @example
 * ```ts
 * const { json } = await chat.send("List two primes.", { jsonSchema: { type: "array", items: { type: "integer" } } });
 * json; // number[]
 * ```
 */
export type JsonSchemaSendOptions<S extends JsonSchema> = Omit<ChatSendOptions, "grammar" | "jsonSchema"> & { jsonSchema: S; grammar?: undefined };

/**
 * {@link ChatSendOptions} with a grammar made from a JSON schema: the result's `json` has the grammar's type.
 * @example
 * ```ts
 * const answer = Grammar.fromJsonSchema({ enum: ["yes", "no"] });
 * const { json } = await chat.send("Is water wet? Answer in JSON.", { grammar: answer }); // "yes" | "no"
 * ```
 */
export type JsonGrammarSendOptions<T> = Omit<ChatSendOptions, "grammar" | "jsonSchema"> & { grammar: JsonGrammar<T>; jsonSchema?: undefined };

/**
 * Why a reply ended. "abort": the signal fired or a stream consumer stopped reading.
 * @example
 * ```ts
 * const { stopReason } = await chat.send("Hi", { maxTokens: 8 });
 * if (stopReason === "maxTokens") console.log("(cut short)");
 * ```
 */
export type ChatStopReason = "eos" | "maxTokens" | "stop" | "abort";

/**
 * Token counts of one turn.
 * @example
 * ```ts
 * const { usage } = await chat.send("And then?");
 * console.log(`evaluated ${usage.promptTokens - usage.cachedTokens} of ${usage.promptTokens} prompt tokens`);
 * ```
 */
export interface ChatUsage {
  /** Tokens of the whole rendered prompt (the conversation so far plus the new message). */
  promptTokens: number;
  /** How many of those were already in the KV cache and were not evaluated again. */
  cachedTokens: number;
  /** Tokens generated (EOS not counted). */
  completionTokens: number;
}

/**
 * The outcome of one turn.
 * @example
 * ```ts
 * const { text, tokens, stopReason, usage, droppedMessages } = await chat.send("Hello");
 * ```
 */
export interface ChatResult<T = undefined> {
  /** The reply, without the stop string. */
  text: string;
  /** The generated token ids (EOS not included). */
  tokens: number[];
  stopReason: ChatStopReason;
  usage: ChatUsage;
  /** Messages removed from the start of the history (after the system prompt) to make room for this turn. */
  droppedMessages: number;
  /**
   * With `jsonSchema` (or a grammar from {@link Grammar.fromJsonSchema}): the reply parsed, typed from the schema.
   * Reading it throws {@link GrammarError} unless the grammar ended the reply (stopReason "eos"):
   * `GRAMMAR_INCOMPLETE` when it was cut (maxTokens, a stop string, abort), `JSON_SCHEMA_UNSATISFIABLE` when no
   * value satisfies the schema (then nothing is generated and stopReason is "maxTokens"). Undefined otherwise.
   */
  readonly json: T;
}

/**
 * The chunks of one reply, as an async iterable, and the turn's result.
 * Breaking out of the loop stops generation; `result` then resolves with stopReason "abort".
 * @example
 * ```ts
 * const stream = chat.stream("Tell me a story.");
 * for await (const { text } of stream) process.stdout.write(text);
 * console.log((await stream.result).usage);
 * ```
 */
export interface ChatStream<T = undefined> extends AsyncIterable<GeneratedToken> {
  /** Resolves when the turn ends (whether or not the chunks are read); rejects if the turn fails. */
  readonly result: Promise<ChatResult<T>>;
}

/** @internal what a chat needs from its model */
export interface ChatHost {
  readonly tokenizer: Tokenizer;
  readonly nExperts: number;
  readonly expertsPerToken: number;
  createSession(options: { contextSize?: number; batchSize?: number; kvCacheType?: "f16" | "f32" }): Session;
  formatter(template: string | undefined): ChatFormatter;
}

interface ResolvedSend {
  maxTokens: number;
  signal: AbortSignal | undefined;
  generate: Omit<GenerateOptions, "grammar" | "jsonSchema">;
  constraint: Constraint | undefined;
}

/**
 * What the cache holds, as text: `text` rendered ↔ `tokens`, and the offsets at which a prefix of one maps to a
 * prefix of the other exactly (the end of each recorded reply). Replies are kept as the tokens the model
 * sampled, which re-tokenizing their text would not always give back, so the next turn reuses the cache.
 */
interface Transcript {
  text: string;
  tokens: Int32Array;
  marks: { textLength: number; tokenLength: number }[];
}

const EMPTY_TRANSCRIPT: Transcript = { text: "", tokens: new Int32Array(0), marks: [] };

/**
 * A conversation over its own KV cache, formatted with the model's chat template. Turns are queued in call order;
 * each evaluates only the tokens the cache lacks; the oldest turns are dropped when the context fills up. See
 * docs/chat.md. Create with {@link Mixtral.createChat}.
 * @example
 * ```ts
 * using chat = model.createChat({ systemPrompt: "You are terse." });
 * const first = await chat.send("Name three primes.", { temperature: 0 });
 * const second = await chat.send("Two more.");
 * console.log(first.text, second.text, second.usage.cachedTokens, chat.history.length); // … 5
 * ```
 */
export class Chat implements Disposable {
  /** The session that holds this chat's KV cache (read its tokens, routing or state; don't evaluate on it). */
  readonly session: Session;
  /** See {@link ChatOptions.contextShift}. */
  readonly contextShift: ContextShiftStrategy;
  /** Whether Mistral's guardrail is prepended to the system prompt. */
  readonly safePrompt: boolean;
  private readonly host: ChatHost;
  private readonly formatter: ChatFormatter;
  private readonly initialMessages: ChatMessage[];
  private messages: ChatMessage[];
  private transcript: Transcript = EMPTY_TRANSCRIPT;
  private experts: number;
  private queue: Promise<unknown> = Promise.resolve();

  /** @internal use {@link Mixtral.createChat} */
  constructor(host: ChatHost, options?: ChatOptions) {
    const o = checkOptions<ChatOptions>("options", options, CHAT_OPTION_KEYS);
    const systemPrompt = o.systemPrompt === undefined ? undefined : checkString("options.systemPrompt", o.systemPrompt);
    const template = o.template === undefined ? undefined : checkString("options.template", o.template, { allowEmpty: false });
    this.host = host;
    this.contextShift =
      o.contextShift === undefined ? "drop-oldest-turns" : checkChoice("options.contextShift", o.contextShift, ["error", "drop-oldest-turns"] as const);
    this.safePrompt = o.safePrompt === undefined ? false : checkBoolean("options.safePrompt", o.safePrompt);
    this.experts = o.expertsPerToken === undefined ? host.expertsPerToken : checkExperts(host, "options.expertsPerToken", o.expertsPerToken);
    this.formatter = host.formatter(template);
    this.initialMessages = systemPrompt === undefined ? [] : [{ role: "system", content: systemPrompt }];
    this.messages = [...this.initialMessages];
    this.session = host.createSession({ contextSize: o.contextSize, batchSize: o.batchSize, kvCacheType: o.kvCacheType });
  }

  /** The conversation so far (copies), system prompt first. Dropped turns are no longer in it. */
  get history(): ChatMessage[] {
    return this.messages.map((m) => ({ ...m }));
  }

  /** Experts per token used by the next turn. */
  get expertsPerToken(): number {
    return this.experts;
  }

  /**
   * Routes each token to `k` experts from the next turn on (1 … the load-time value): top-1 is faster, at a cost
   * in quality measured in docs/performance-tuning.md.
   * @example
   * ```ts
   * chat.setExpertsPerToken(1);
   * ```
   */
  setExpertsPerToken(k: number): void {
    this.checkAlive();
    this.experts = checkExperts(this.host, "k", k);
  }

  /**
   * Sends a user message and resolves with the whole reply. Calls on one chat run one at a time in call order
   * (a second `send` waits for the first), never interleaved.
   * @example
   * ```ts
   * const chat = model.createChat({ systemPrompt: "Answer in one sentence." });
   * const { text, usage } = await chat.send("What is a mixture of experts?", { temperature: 0, maxTokens: 64 });
   * console.log(text, usage.cachedTokens);
   * ```
   * With a JSON schema the reply is constrained and `json` is typed from the schema:
   * ```ts
   * const { json } = await chat.send("Describe Paris.", {
   *   jsonSchema: { type: "object", properties: { city: { type: "string" }, population: { type: "integer" } }, required: ["city"] },
   * });
   * json.city; // string
   * ```
   */
  send<const S extends JsonSchema>(text: string, options: JsonSchemaSendOptions<S>): Promise<ChatResult<JsonSchemaToType<S>>>;
  send<T>(text: string, options: JsonGrammarSendOptions<T>): Promise<ChatResult<T>>;
  send(text: string, options?: ChatSendOptions): Promise<ChatResult>;
  send(text: string, options?: ChatSendOptions): Promise<ChatResult<unknown>> {
    this.checkAlive();
    checkString("text", text);
    const resolved = this.checkSendOptions(options);
    return this.enqueue(() => this.turn(text, resolved, resolved.signal, undefined));
  }

  /**
   * Sends a user message and streams the reply as it is generated. Queued like {@link send}.
   * @example
   * ```ts
   * const stream = chat.stream("Tell me a story.", { maxTokens: 200 });
   * for await (const { text } of stream) process.stdout.write(text);
   * const { stopReason, usage } = await stream.result;
   * ```
   */
  stream<const S extends JsonSchema>(text: string, options: JsonSchemaSendOptions<S>): ChatStream<JsonSchemaToType<S>>;
  stream<T>(text: string, options: JsonGrammarSendOptions<T>): ChatStream<T>;
  stream(text: string, options?: ChatSendOptions): ChatStream;
  stream(text: string, options?: ChatSendOptions): ChatStream<unknown> {
    this.checkAlive();
    checkString("text", text);
    const resolved = this.checkSendOptions(options);
    const consumerGone = new AbortController();
    // The turn stops when the caller's signal fires or the reader leaves the loop.
    const forward = () => consumerGone.abort(resolved.signal?.reason);
    if (resolved.signal?.aborted) forward();
    else resolved.signal?.addEventListener("abort", forward, { once: true });
    const channel = new ChunkChannel(() => consumerGone.abort());
    const result = this.enqueue(() => this.turn(text, resolved, consumerGone.signal, (chunk) => channel.push(chunk)));
    result.finally(() => resolved.signal?.removeEventListener("abort", forward)).catch(() => {});
    result.then(() => channel.end(), (error: unknown) => channel.fail(error));
    result.catch(() => {}); // a failure reaches the reader through the iterator; `result` rejects for whoever awaits it
    return Object.assign(channel, { result });
  }

  /**
   * Replaces the conversation (system prompt included, if any). Queued after pending turns. The next turn still
   * reuses whatever prefix of the KV cache the new history shares (few-shot examples, an edited last message).
   * Throws ChatTemplateError, keeping the old history, when the template cannot continue the new one with a user
   * turn (the Mixtral template wants user and assistant to alternate, so a history ending with a user message).
   * @example
   * ```ts
   * await chat.setHistory([
   *   { role: "system", content: "Reply with the capital only." },
   *   { role: "user", content: "France?" }, { role: "assistant", content: "Paris" },
   * ]);
   * ```
   */
  setHistory(messages: readonly ChatMessage[]): Promise<void> {
    this.checkAlive();
    const copy = checkMessages("messages", messages);
    // A history the template cannot continue with a user turn would make every later send fail: refuse it now.
    this.render([...copy, { role: "user", content: "" }]);
    return this.enqueue(async () => {
      this.messages = copy;
    });
  }

  /** Back to the system prompt only, with an empty cache and routing statistics. Queued after pending turns. */
  reset(): Promise<void> {
    this.checkAlive();
    return this.enqueue(async () => {
      this.session.reset();
      this.messages = [...this.initialMessages];
      this.transcript = EMPTY_TRANSCRIPT;
    });
  }

  /**
   * How often each expert was chosen, per layer, over every token this chat evaluated since it was created or
   * reset (prompt tokens and generated ones; each counts experts-per-token times).
   * @example
   * ```ts
   * const { layers } = chat.routing();
   * console.log(layers[0].counts); // e.g. [12, 3, 9, 0, 7, 5, 2, 4]
   * ```
   */
  routing(): RoutingStats {
    return this.session.routing();
  }

  /** Frees the chat's KV cache; a turn in flight stops and later calls throw DisposedError. */
  dispose(): void {
    this.session.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  private checkAlive(): void {
    if (this.session.isDisposed) throw new DisposedError("the chat");
  }

  private checkSendOptions(options: unknown): ResolvedSend {
    const o = checkOptions<ChatSendOptions>("options", options, CHAT_SEND_OPTION_KEYS);
    const maxTokens = o.maxTokens === undefined ? 256 : checkInteger("options.maxTokens", o.maxTokens, 0);
    const signal = checkSignal("options.signal", o.signal);
    if (o.onRouting !== undefined) checkFunction("options.onRouting", o.onRouting);
    if (o.stop !== undefined) checkStops("options.stop", o.stop);
    const sampling: SamplingOptions = {};
    for (const key of SAMPLING_OPTION_NAMES) if (o[key] !== undefined) (sampling as Record<string, unknown>)[key] = o[key];
    resolveSamplingOptions(sampling);
    const constraint = resolveConstraint(o.grammar, o.jsonSchema);
    return { maxTokens, signal, generate: { ...sampling, maxTokens, stop: o.stop, onRouting: o.onRouting }, constraint };
  }

  private enqueue<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => {});
    return run;
  }

  /** One turn: fit the prompt, reuse the cache's common prefix, generate, record. */
  private async turn(
    userText: string,
    send: ResolvedSend,
    signal: AbortSignal | undefined,
    sink: ((chunk: GeneratedToken) => void) | undefined,
  ): Promise<ChatResult<unknown>> {
    const usage: ChatUsage = { promptTokens: 0, cachedTokens: 0, completionTokens: 0 };
    if (signal?.aborted) return attachJson({ text: "", tokens: [], stopReason: "abort", usage, droppedMessages: 0 }, send.constraint, "", "abort");
    this.checkAlive();
    if (this.session.expertsPerToken !== this.experts) this.session.setExpertsPerToken(this.experts);

    let messages: ChatMessage[] = [...this.messages, { role: "user", content: userText }];
    let prompt = this.buildPrompt(messages);
    const contextSize = this.session.contextSize;
    const needed = () => prompt.tokens.length + send.maxTokens;
    if (needed() > contextSize && this.contextShift === "drop-oldest-turns") {
      // Dropping a turn re-evaluates everything after the system prompt, so drop until a quarter of the context
      // is spare too: the cost is then paid once every few turns rather than on every turn of a full chat.
      const target = contextSize - Math.floor(contextSize / 4);
      for (let shorter = dropOldestTurn(messages); shorter !== undefined && needed() > target; shorter = dropOldestTurn(messages)) {
        messages = shorter;
        prompt = this.buildPrompt(messages);
      }
    }
    if (needed() > contextSize) {
      throw new ContextOverflowError(
        `the prompt (${prompt.tokens.length} tokens) plus maxTokens (${send.maxTokens}) exceeds the chat's context size ` +
          `${contextSize}` + (this.contextShift === "error" ? "" : " even with every earlier turn dropped"),
      );
    }
    const droppedMessages = this.messages.length + 1 - messages.length;

    // Keep the longest common prefix of the cache, but evaluate at least one token for fresh logits.
    const cached = this.session.tokens;
    const limit = Math.min(cached.length, prompt.tokens.length - 1);
    let common = 0;
    while (common < limit && cached[common] === prompt.tokens[common]) common++;
    if (cached.length > common) {
      try {
        this.session.rewind(cached.length - common);
      } catch (error) {
        if (!(error instanceof RangeError)) throw error;
        this.session.reset(); // a sliding window already overwrote what the prefix needs
        common = 0;
      }
    }
    usage.promptTokens = prompt.tokens.length;
    usage.cachedTokens = common;

    const generated: number[] = [];
    let text = "";
    let stripSpace = this.host.tokenizer.addSpacePrefix;
    let stopReason: ChatStopReason;
    const steps = this.session.generateReply(prompt.tokens.subarray(common), { ...send.generate, signal }, send.constraint);
    try {
      for (;;) {
        const step = await steps.next();
        if (step.done) {
          stopReason = step.value.stopReason;
          break;
        }
        generated.push(step.value.token);
        let chunk = step.value.text;
        // The reply's first space is the SentencePiece word boundary after "[/INST]", not text (as Mistral decodes).
        if (stripSpace && chunk !== "") {
          if (chunk.startsWith(" ")) chunk = chunk.slice(1);
          stripSpace = false;
        }
        text += chunk;
        sink?.({ token: step.value.token, text: chunk });
      }
    } catch (error) {
      if (!(error instanceof AbortError)) throw error;
      stopReason = "abort";
    }
    usage.completionTokens = generated.length;

    if (stopReason !== "abort" || generated.length > 0) {
      this.messages = [...messages, { role: "assistant", content: text }];
      this.record(prompt, generated, text);
    }
    return attachJson({ text, tokens: generated, stopReason, usage, droppedMessages }, send.constraint, text, stopReason);
  }

  /** The messages through the template, ending with the assistant's turn to speak (ChatTemplateError if it refuses). */
  private render(messages: readonly ChatMessage[]): RenderedPrompt {
    return this.formatter.render(this.safePrompt ? withSafePrompt(messages) : messages, true);
  }

  /** The prompt's tokens: a recorded prefix of the transcript where the text still matches, then the rest. */
  private buildPrompt(messages: readonly ChatMessage[]): { rendered: RenderedPrompt; tokens: Int32Array; marks: Transcript["marks"] } {
    const rendered = this.render(messages);
    const { text, tokens, marks } = this.transcript;
    for (let i = marks.length - 1; i >= 0; i--) {
      const mark = marks[i];
      if (mark.textLength > rendered.text.length || !rendered.text.startsWith(text.slice(0, mark.textLength))) continue;
      const tail = this.formatter.tokenize(rendered, mark.textLength);
      if (tail === null) continue;
      const joined = new Int32Array(mark.tokenLength + tail.length);
      joined.set(tokens.subarray(0, mark.tokenLength));
      joined.set(tail, mark.tokenLength);
      return { rendered, tokens: joined, marks: marks.slice(0, i + 1) };
    }
    return { rendered, tokens: this.formatter.tokenize(rendered, 0)!, marks: [] };
  }

  private record(prompt: { rendered: RenderedPrompt; tokens: Int32Array; marks: Transcript["marks"] }, generated: number[], text: string): void {
    const tokens = new Int32Array(prompt.tokens.length + generated.length);
    tokens.set(prompt.tokens);
    tokens.set(generated, prompt.tokens.length);
    const transcriptText = prompt.rendered.text + text;
    const marks = [...prompt.marks];
    // The reply's tokens stand for its text only when nothing was cut (a stop string) or held back.
    let decoded = this.host.tokenizer.decode(generated, { continuation: true });
    if (this.host.tokenizer.addSpacePrefix && decoded.startsWith(" ")) decoded = decoded.slice(1);
    if (decoded === text) marks.push({ textLength: transcriptText.length, tokenLength: tokens.length });
    this.transcript = { text: transcriptText, tokens, marks };
  }
}

function checkExperts(host: ChatHost, name: string, k: unknown): number {
  if (host.nExperts === 0) throw new ArgumentRangeError(`${name} cannot be set: the model is dense (it has no experts)`, "ERR_INVALID_ARG_VALUE");
  return checkInteger(name, k, 1, host.expertsPerToken);
}

/** The messages without their oldest exchange after the system prompt; undefined when only the new message is left. */
export function dropOldestTurn(messages: readonly ChatMessage[]): ChatMessage[] | undefined {
  const start = messages.findIndex((m) => m.role !== "system");
  if (start < 0 || start >= messages.length - 1) return undefined;
  let end = start + 1;
  while (end < messages.length - 1 && messages[end].role !== "user") end++;
  return [...messages.slice(0, start), ...messages.slice(end)];
}

/** A one-reader queue of chunks that the turn fills as fast as it generates. */
class ChunkChannel implements AsyncIterableIterator<GeneratedToken> {
  private readonly buffered: GeneratedToken[] = [];
  private waiting: { resolve: (r: IteratorResult<GeneratedToken>) => void; reject: (e: unknown) => void } | undefined;
  private done = false;
  private error: { value: unknown } | undefined;
  private readonly onReturn: () => void;

  constructor(onReturn: () => void) {
    this.onReturn = onReturn;
  }

  push(chunk: GeneratedToken): void {
    if (this.done) return;
    if (this.waiting) {
      this.waiting.resolve({ value: chunk, done: false });
      this.waiting = undefined;
    } else {
      this.buffered.push(chunk);
    }
  }

  end(): void {
    this.settle(undefined);
  }

  fail(error: unknown): void {
    this.settle({ value: error });
  }

  next(): Promise<IteratorResult<GeneratedToken>> {
    const chunk = this.buffered.shift();
    if (chunk !== undefined) return Promise.resolve({ value: chunk, done: false });
    if (this.error) {
      const { value } = this.error;
      this.error = undefined;
      return Promise.reject(value);
    }
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
  }

  /** The reader stopped (break, return or throw in the loop): stop generating. */
  return(): Promise<IteratorResult<GeneratedToken>> {
    this.buffered.length = 0;
    this.error = undefined;
    if (!this.done) {
      this.done = true;
      this.onReturn();
    }
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<GeneratedToken> {
    return this;
  }

  private settle(error: { value: unknown } | undefined): void {
    if (this.done) return;
    this.done = true;
    if (this.waiting) {
      if (error) this.waiting.reject(error.value);
      else this.waiting.resolve({ value: undefined, done: true });
      this.waiting = undefined;
    } else {
      this.error = error;
    }
  }
}
