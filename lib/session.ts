/**
 * A session: one conversation's KV cache over a loaded model, and the evaluation and generation that append to
 * it. Calls on one session run one at a time, in order; different sessions of a model share its threads.
 * @module
 */
import { attachJson, grammarVocabulary, resolveConstraint, type Constraint } from "./constrained.js";
import { AbortError, ArgumentRangeError, ArgumentTypeError, ContextOverflowError, DisposedError, fromNativeError, MixtralError, withNativeErrorsSync } from "./errors.js";
import type { Grammar, JsonGrammar } from "./grammar/grammar.js";
import type { GrammarMatcher } from "./grammar/matcher.js";
import type { JsonSchema, JsonSchemaToType } from "./grammar/types.js";
import type { NativeSessionHandle } from "./native.js";
import { SAMPLING_OPTION_NAMES, createSampler, type SamplingOptions } from "./sampling/index.js";
import { StopStringMatcher } from "./stop-strings.js";
import type { Tokenizer } from "./tokenizer/tokenizer.js";
import { checkBoolean, checkFunction, checkInteger, checkOptions, checkSignal, checkStops, checkTokens, describeValue } from "./validate.js";

/**
 * Options of {@link Mixtral.createSession}.
 * @example
 * ```ts
 * const session = model.createSession({ contextSize: 8192, batchSize: 256, kvCacheType: "f16", expertsPerToken: 2 });
 * ```
 */
export interface SessionOptions {
  /** Positions the KV cache holds (without a sliding window). Default min(model context, 4096). */
  contextSize?: number;
  /** Tokens per prefill chunk; abort is checked between chunks and layers. Default 512. */
  batchSize?: number;
  /** KV cache element type: "f16" (default, half the memory, as llama.cpp) or "f32". */
  kvCacheType?: "f16" | "f32";
  /** Experts per token (1 … the load-time value); see {@link Session.setExpertsPerToken}. Default: the model's. */
  expertsPerToken?: number;
}

export const SESSION_OPTION_KEYS = ["contextSize", "batchSize", "kvCacheType", "expertsPerToken"] as const;

/**
 * Options of {@link Session.eval}.
 * @example
 * ```ts
 * await session.eval(tokens, { signal: AbortSignal.timeout(10_000) });
 * ```
 */
export interface EvalOptions {
  /** Stops the evaluation within one layer; the session is left as before the call. */
  signal?: AbortSignal;
}

/**
 * Options of {@link Session.generate}: sampling, limits and stopping.
 * @example
 * ```ts
 * session.generate("Once upon a time", { temperature: 0.8, maxTokens: 100, stop: ["\n\n"], seed: 3 });
 * ```
 */
export interface GenerateOptions extends SamplingOptions {
  /** Most tokens to generate. Default 256. */
  maxTokens?: number;
  /** Text that ends generation when it appears; it is not emitted, even when split across tokens. */
  stop?: string | readonly string[];
  /** Stops generation within one decode step (or one prefill chunk) with an AbortError. */
  signal?: AbortSignal;
  /** For a string prompt: start with BOS. Default: the tokenizer's setting when the session is empty, else false. */
  addBos?: boolean;
  /** Called after every decoded token with each layer's chosen experts and their weights. */
  onRouting?: (layer: number, experts: readonly number[], weights: readonly number[]) => void;
  /**
   * Constrain the output to a grammar: GBNF text or a {@link Grammar}. Every token that cannot extend the output
   * towards a match is masked before sampling (a custom `sampler` sees the masked logits), EOS is allowed only
   * when the output is a complete match, and generation ends with stopReason "eos" as soon as the output is
   * complete and cannot grow. Tokens are matched by their bytes: a prompt's continuation keeps the SentencePiece
   * word-boundary space (`▁yes` is " yes"). Not with `jsonSchema`. See docs/grammar.md.
   */
  grammar?: string | Grammar;
  /**
   * Constrain the output to JSON that satisfies this schema (the subset in docs/grammar.md); the result's `json`
   * is the parsed value, typed from a const schema. Not with `grammar`.
   */
  jsonSchema?: JsonSchema;
}

export const GENERATE_OPTION_KEYS: readonly (keyof GenerateOptions)[] = [
  ...SAMPLING_OPTION_NAMES, "maxTokens", "stop", "signal", "addBos", "onRouting", "grammar", "jsonSchema",
];

/**
 * {@link GenerateOptions} with a JSON schema `S`: the result's `json` has type `JsonSchemaToType<S>`.
 * @example
 * ```ts
 * const options = { jsonSchema: { type: "array", items: { type: "integer" } }, maxTokens: 64 } as const;
 * const steps = session.generate("Primes: ", options); // GenerateResult<number[]> when done
 * ```
 */
export type JsonSchemaGenerateOptions<S extends JsonSchema> = Omit<GenerateOptions, "grammar" | "jsonSchema"> & { jsonSchema: S; grammar?: undefined };

/**
 * {@link GenerateOptions} with a grammar made from a JSON schema: the result's `json` has the grammar's type.
 * @example
 * ```ts
 * const grammar = Grammar.fromJsonSchema({ enum: ["red", "green"] });
 * const steps = session.generate("Colour: ", { grammar }); // GenerateResult<"red" | "green"> when done
 * ```
 */
export type JsonGrammarGenerateOptions<T> = Omit<GenerateOptions, "grammar" | "jsonSchema"> & { grammar: JsonGrammar<T>; jsonSchema?: undefined };

/**
 * One generated token and the text it completes (possibly "": held back UTF-8 or a possible stop string).
 * @example
 * ```ts
 * for await (const { token, text } of session.generate("Hi", { maxTokens: 8 })) console.log(token, JSON.stringify(text));
 * ```
 */
export interface GeneratedToken {
  token: number;
  text: string;
}

/**
 * Why generation ended.
 * @example
 * ```ts
 * const steps = session.generate("Hi", { maxTokens: 8 });
 * let step = await steps.next();
 * while (!step.done) step = await steps.next();
 * const reason: StopReason = step.value.stopReason; // "eos" | "maxTokens" | "stop"
 * ```
 */
export type StopReason = "eos" | "maxTokens" | "stop";

/**
 * The generator's return value (what `for await` does not show; see {@link Session.generate}).
 * @example
 * ```ts
 * const steps = session.generate("Hi", { maxTokens: 8 });
 * let step = await steps.next();
 * while (!step.done) step = await steps.next();
 * const { text, tokens, stopReason, promptTokens }: GenerateResult = step.value;
 * ```
 */
export interface GenerateResult<T = undefined> {
  stopReason: StopReason;
  /** All released text. */
  text: string;
  /** Every sampled token except EOS (tokens of a matched stop string included: they are in the cache). */
  tokens: number[];
  /** Prompt tokens evaluated by this call. */
  promptTokens: number;
  /**
   * With `jsonSchema` (or a grammar from {@link Grammar.fromJsonSchema}): the output parsed, typed from the
   * schema. Reading it throws {@link GrammarError} unless the grammar ended the output (stopReason "eos"):
   * `GRAMMAR_INCOMPLETE` when it was cut (maxTokens, a stop string), `JSON_SCHEMA_UNSATISFIABLE` when no value
   * satisfies the schema (then nothing is generated and stopReason is "maxTokens"). Undefined otherwise.
   */
  readonly json: T;
}

/**
 * Routing statistics since the last reset: per layer, how many tokens each expert processed.
 * @example
 * ```ts
 * const { layers }: RoutingStats = session.routing();
 * const busiest = layers.map((l) => l.counts.indexOf(Math.max(...l.counts))); // per layer
 * ```
 */
export interface RoutingStats {
  layers: { counts: number[] }[];
}

/**
 * What {@link Session.stats} reports.
 * @example
 * ```ts
 * const { kvBytes, slidingWindow } = session.stats();
 * console.log(`KV cache: ${(kvBytes / 2 ** 20).toFixed(0)} MiB, window ${slidingWindow ?? "none"}`);
 * ```
 */
export interface SessionStats {
  /**
   * Bytes of the K and V caches, allocated when the session is created. Without a window they hold contextSize
   * positions; with a sliding window W, W + batchSize − 1 positions whatever the context size.
   */
  kvBytes: number;
  /** The attention window W, or null for full attention. */
  slidingWindow: number | null;
  /** Experts each token is routed to (0 for a dense model). */
  expertsPerToken: number;
}

/** @internal what a session needs from its model */
export interface SessionHost {
  readonly nVocab: number;
  readonly nLayers: number;
  readonly nExperts: number;
  readonly expertsPerToken: number;
  readonly slidingWindow: number | null;
  readonly tokenizer: Tokenizer;
  sessionClosed(session: Session): void;
}

/**
 * One conversation's KV cache over a loaded model: {@link eval} appends tokens and returns the next-token logits,
 * {@link generate} samples a continuation, {@link rewind} and {@link reset} edit the cache, {@link saveState} and
 * {@link loadState} persist it. Calls run one at a time in call order. Create with {@link Mixtral.createSession}.
 * @example
 * ```ts
 * using session = model.createSession({ contextSize: 2048 });
 * for await (const { text } of session.generate("[INST] Hi! [/INST]", { maxTokens: 32 })) process.stdout.write(text);
 * const state = session.saveState(); // KV cache and tokens; restore later with loadState(state)
 * ```
 */
export class Session implements Disposable {
  /** Positions the cache holds; Infinity with a sliding window (the cache rolls). */
  readonly contextSize: number;
  private readonly host: SessionHost;
  private readonly handle: NativeSessionHandle;
  private readonly logits: Float32Array;
  private history = new Int32Array(256);
  private length = 0;
  private queue: Promise<unknown> = Promise.resolve();
  /** The logits buffer holds the distribution after the last cached token. */
  private logitsCurrent = false;
  private pending = 0;
  private disposed = false;

  /** @internal use {@link Mixtral.createSession} */
  constructor(host: SessionHost, handle: NativeSessionHandle, logits: Float32Array, contextSize: number) {
    this.host = host;
    this.handle = handle;
    this.logits = logits;
    this.contextSize = contextSize;
  }

  /** The tokens in the cache, oldest first (a copy). */
  get tokens(): Int32Array {
    return this.history.slice(0, this.length);
  }

  /** Number of tokens in the cache. */
  get position(): number {
    return this.length;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  /**
   * Appends `tokens` to the cache and resolves with the next-token logits after the last one (length nVocab).
   * The returned array is reused: the next eval overwrites it, so copy it if you need to keep it.
   * @example
   * ```ts
   * const logits = await session.eval(model.tokenizer.encode("In the beginning"));
   * let best = 0;
   * for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
   * await session.eval([best]);
   * ```
   */
  eval(tokens: ArrayLike<number>, options?: EvalOptions): Promise<Float32Array> {
    this.checkAlive();
    const ids = checkTokens("tokens", tokens, this.host.nVocab);
    const { signal } = checkOptions<EvalOptions>("options", options, ["signal"]);
    checkSignal("options.signal", signal);
    return this.enqueue(() => this.evalNow(ids, signal));
  }

  /** Forgets the last `n` tokens of the cache. */
  rewind(n: number): void {
    this.checkIdle();
    checkInteger("n", n, 0, this.length);
    if (!this.handle.rewind(n)) {
      throw new ArgumentRangeError(`n is ${n}, but this sliding-window session can rewind at most ${this.handle.maxRewind()} tokens`);
    }
    this.length -= n;
    if (n > 0) this.logitsCurrent = false;
  }

  /** Empties the cache and the routing statistics. */
  reset(): void {
    this.checkIdle();
    this.handle.reset();
    this.length = 0;
    this.logitsCurrent = false;
  }

  /** Experts each token is routed to in this session (the model's load-time value unless changed). */
  get expertsPerToken(): number {
    this.checkAlive();
    return this.handle.stats().expertsPerToken;
  }

  /**
   * Routes each token to the top `k` experts from now on, 1 ≤ k ≤ the load-time value (scratch is sized for
   * it). Top-1 is faster at a measured cost in quality (docs/performance-tuning.md). RangeError on a dense model.
   * @example
   * ```ts
   * session.setExpertsPerToken(1); // Mixtral top-1: fewer expert matmuls per token
   * ```
   */
  setExpertsPerToken(k: number): void {
    this.checkIdle();
    if (this.host.nExperts === 0) throw new ArgumentRangeError("k cannot be set: the model is dense (it has no experts)", "ERR_INVALID_ARG_VALUE");
    this.handle.setExpertsPerToken(checkInteger("k", k, 1, this.host.expertsPerToken));
  }

  /**
   * The session's state: the KV cache rows, the tokens and the current logits, in a versioned format that names
   * the model (hyperparameters, tensor layout, a sample of the weights). Costs a copy of the used cache
   * (for Mixtral 8x7B with an f16 cache, 128 KiB per token); call it while the session is idle.
   * @example
   * ```ts
   * import { writeFile } from "node:fs/promises";
   * await writeFile("chat.state", session.saveState());
   * ```
   */
  saveState(): Uint8Array {
    this.checkIdle();
    const tokens = this.history.subarray(0, this.length);
    return withNativeErrorsSync(() => this.handle.saveState(tokens, this.logitsCurrent ? this.logits : null));
  }

  /**
   * Replaces this session's cache and tokens with a state from {@link saveState}. Nothing changes unless the
   * whole buffer is valid. Throws StateError: `STATE_CORRUPT` (truncated, altered, not a state),
   * `STATE_UNSUPPORTED_VERSION`, `STATE_MODEL_MISMATCH` (saved with another model), `STATE_SESSION_MISMATCH`
   * (another kvCacheType or sliding window, or more tokens than this session's context).
   * @example
   * ```ts
   * import { readFile } from "node:fs/promises";
   * const session = model.createSession();
   * session.loadState(await readFile("chat.state"));
   * for await (const { text } of session.generate("", { maxTokens: 32 })) process.stdout.write(text);
   * ```
   */
  loadState(bytes: Uint8Array): void {
    this.checkIdle();
    if (!(bytes instanceof Uint8Array)) throw new ArgumentTypeError(`bytes must be a Uint8Array; got ${describeValue(bytes)}`);
    const { tokens, logits } = withNativeErrorsSync(() => this.handle.loadState(bytes));
    this.length = 0;
    this.append(tokens);
    if (logits !== null) this.logits.set(logits);
    this.logitsCurrent = logits !== null;
  }

  /** How often each expert was chosen, per layer, since the session started or was reset. */
  routing(): RoutingStats {
    this.checkAlive();
    const counts = this.handle.routingCounts();
    const { nLayers, nExperts } = this.host;
    const layers = [];
    for (let l = 0; l < nLayers && nExperts > 0; l++) {
      layers.push({ counts: Array.from(counts.subarray(l * nExperts, (l + 1) * nExperts)) });
    }
    return { layers };
  }

  /**
   * Sizes of the session's native state.
   * @example
   * ```ts
   * console.log(`KV cache: ${session.stats().kvBytes / 2 ** 20} MiB`);
   * ```
   */
  stats(): SessionStats {
    this.checkAlive();
    const { kvBytes, slidingWindow, expertsPerToken } = withNativeErrorsSync(() => this.handle.stats());
    return { kvBytes, slidingWindow: slidingWindow === 0 ? null : slidingWindow, expertsPerToken };
  }

  /**
   * Appends the prompt and samples tokens until EOS, a stop string or `maxTokens`. Each step yields the token and
   * the text it completes; the generator's return value is a {@link GenerateResult}. An empty prompt continues
   * from the cache. Breaking out of the loop stops generation; the cache keeps what was evaluated.
   * @example
   * ```ts
   * for await (const { text } of session.generate("In the beginning", { maxTokens: 32, temperature: 0 })) {
   *   process.stdout.write(text);
   * }
   * ```
   * With a JSON schema the result's `json` is typed:
   * ```ts
   * const steps = session.generate("[INST] A colour as JSON [/INST]", {
   *   jsonSchema: { type: "object", properties: { name: { type: "string" } }, required: ["name"] },
   * });
   * let step = await steps.next();
   * while (!step.done) step = await steps.next();
   * console.log(step.value.json.name); // string
   * ```
   */
  generate<const S extends JsonSchema>(
    prompt: string | ArrayLike<number>,
    options: JsonSchemaGenerateOptions<S>,
  ): AsyncGenerator<GeneratedToken, GenerateResult<JsonSchemaToType<S>>, void>;
  generate<T>(prompt: string | ArrayLike<number>, options: JsonGrammarGenerateOptions<T>): AsyncGenerator<GeneratedToken, GenerateResult<T>, void>;
  generate(prompt: string | ArrayLike<number>, options?: GenerateOptions): AsyncGenerator<GeneratedToken, GenerateResult, void>;
  generate(prompt: string | ArrayLike<number>, options?: GenerateOptions): AsyncGenerator<GeneratedToken, GenerateResult<unknown>, void> {
    this.checkAlive();
    const o = checkOptions<GenerateOptions>("options", options, GENERATE_OPTION_KEYS);
    const constraint = resolveConstraint(o.grammar, o.jsonSchema);
    const maxTokens = o.maxTokens === undefined ? 256 : checkInteger("options.maxTokens", o.maxTokens, 0);
    const stops = o.stop === undefined ? [] : checkStops("options.stop", o.stop);
    const signal = checkSignal("options.signal", o.signal);
    const addBos = o.addBos === undefined ? undefined : checkBoolean("options.addBos", o.addBos);
    const onRouting = o.onRouting === undefined ? undefined : checkFunction<NonNullable<GenerateOptions["onRouting"]>>("options.onRouting", o.onRouting);
    const samplingOptions: SamplingOptions = {};
    for (const key of SAMPLING_OPTION_NAMES) if (o[key] !== undefined) (samplingOptions as Record<string, unknown>)[key] = o[key];
    const sampler = createSampler(samplingOptions);
    const tokenizer = this.host.tokenizer;
    let promptTokens: Int32Array;
    if (typeof prompt === "string") {
      promptTokens = tokenizer.encode(prompt, { addBos: addBos ?? (this.length === 0 ? tokenizer.addBos : false) });
    } else {
      promptTokens = checkTokens("prompt", prompt, this.host.nVocab, { allowEmpty: true });
    }
    if (promptTokens.length === 0 && this.length === 0) {
      throw new ArgumentRangeError("prompt is empty and the session holds no tokens to continue from", "ERR_INVALID_ARG_VALUE");
    }
    return this.generateSteps(promptTokens, { maxTokens, stops, signal, onRouting, sampler, constraint, dropLeadingSpace: undefined });
  }

  /**
   * @internal Chat's entry: options checked by the caller, the constraint resolved, and the grammar matched
   * against the reply text (`dropLeadingSpace`: the chat drops the reply's word-boundary space).
   */
  generateReply(
    promptTokens: Int32Array,
    options: Omit<GenerateOptions, "grammar" | "jsonSchema">,
    constraint: Constraint | undefined,
  ): AsyncGenerator<GeneratedToken, GenerateResult<unknown>, void> {
    this.checkAlive();
    const samplingOptions: SamplingOptions = {};
    for (const key of SAMPLING_OPTION_NAMES) if (options[key] !== undefined) (samplingOptions as Record<string, unknown>)[key] = options[key];
    const stops = options.stop === undefined ? [] : typeof options.stop === "string" ? [options.stop] : [...options.stop];
    return this.generateSteps(promptTokens, {
      maxTokens: options.maxTokens ?? 256,
      stops,
      signal: options.signal,
      onRouting: options.onRouting,
      sampler: createSampler(samplingOptions),
      constraint,
      dropLeadingSpace: true,
    });
  }

  private async *generateSteps(
    promptTokens: Int32Array,
    run: {
      maxTokens: number;
      stops: string[];
      signal: AbortSignal | undefined;
      onRouting: GenerateOptions["onRouting"];
      sampler: ReturnType<typeof createSampler>;
      constraint: Constraint | undefined;
      /** Match the grammar against the text without its first space; default: as the decoder shows the text. */
      dropLeadingSpace: boolean | undefined;
    },
  ): AsyncGenerator<GeneratedToken, GenerateResult<unknown>, void> {
    const { signal, onRouting, sampler, constraint } = run;
    const tokenizer = this.host.tokenizer;
    const eos = tokenizer.eos;
    const continuation = this.length > 0 || promptTokens.some((t) => t !== tokenizer.bos);
    const decoder = tokenizer.createDecoder({ continuation });
    const stopper = new StopStringMatcher(run.stops);
    const generated: number[] = [];
    let text = "";
    let stopReason: StopReason = "maxTokens";
    const finish = () => attachJson({ stopReason, text, tokens: generated, promptTokens: promptTokens.length }, constraint, text, stopReason);

    // An unsatisfiable schema generates nothing, as maxTokens 0 would.
    const maxTokens = constraint !== undefined && constraint.grammar === undefined ? 0 : run.maxTokens;
    let matcher: GrammarMatcher | undefined;
    let masked: Float32Array | undefined;
    if (constraint?.grammar !== undefined) {
      matcher = constraint.grammar.createMatcher(grammarVocabulary(tokenizer), { dropLeadingSpace: run.dropLeadingSpace ?? !continuation });
      // The session's logits stay unmasked (saveState and a later generate read them), so masking works on a copy.
      masked = new Float32Array(this.host.nVocab);
    }
    /** The output is a complete match that no token can extend: end it as EOS would, without another decode. */
    const grammarComplete = () => matcher !== undefined && matcher.canEnd && !matcher.canContinue;
    const prefetchMask = matcher === undefined ? undefined : () => void matcher.allowedCount;

    sampler.accept(this.history.subarray(Math.max(0, this.length - sampler.options.penaltyLastN), this.length));
    sampler.accept(promptTokens);
    let logits: Float32Array;
    if (promptTokens.length > 0) logits = await this.eval(promptTokens, { signal });
    else logits = await this.currentLogits(signal);
    this.reportRouting(onRouting);

    // A chunk waits while its text may still continue into a stop string, so held text that turns out not to
    // be one can be released with it when generation ends.
    let waiting: GeneratedToken | undefined;
    if (grammarComplete()) stopReason = "eos";
    while (generated.length < maxTokens && stopReason !== "eos") {
      let token: number;
      if (matcher !== undefined) {
        masked!.set(logits);
        matcher.applyMask(masked!);
        token = sampler.sample(masked!);
        matcher.acceptToken(token);
      } else {
        token = sampler.sample(logits);
      }
      if (token === eos) {
        stopReason = "eos";
        break;
      }
      generated.push(token);
      const { released, stopped } = stopper.push(decoder.push(token));
      text += released;
      const chunk: GeneratedToken = { token, text: released };
      if (waiting) yield waiting;
      waiting = undefined;
      if (stopped) {
        if (chunk.text !== "") yield chunk;
        stopReason = "stop";
        return finish();
      }
      const complete = grammarComplete();
      if (generated.length === maxTokens || complete) {
        if (complete) stopReason = "eos";
        const tail = stopper.flush() + decoder.flush();
        chunk.text += tail;
        text += tail;
        yield chunk;
        break;
      }
      if (stopper.pending !== "") waiting = chunk;
      else yield chunk;
      // The mask for the next step is computed on this thread while the native threads evaluate the token.
      logits = await this.enqueue(() => this.evalNow(Int32Array.of(token), signal, prefetchMask));
      this.reportRouting(onRouting);
    }
    const tail = stopper.flush() + decoder.flush();
    text += tail;
    if (waiting) {
      waiting.text += tail;
      yield waiting;
    }
    return finish();
  }

  /** The logits after the last cached token, evaluating it again if a rewind or reset made them stale. */
  private async currentLogits(signal: AbortSignal | undefined): Promise<Float32Array> {
    if (this.logitsCurrent) return this.logits;
    const last = this.history[this.length - 1];
    await this.enqueue(async () => {
      if (!this.handle.rewind(1)) throw new ArgumentRangeError("the session cannot re-evaluate its last token: a sliding window overwrote it", "ERR_INVALID_ARG_VALUE");
      this.length -= 1;
    });
    return this.eval([last], { signal });
  }

  private reportRouting(onRouting: GenerateOptions["onRouting"]): void {
    if (onRouting === undefined || this.host.nExperts === 0) return;
    const { experts, weights } = this.handle.lastRouting();
    const { nLayers, nExperts } = this.host;
    const k = this.handle.stats().expertsPerToken;
    for (let layer = 0; layer < nLayers; layer++) {
      const at = layer * nExperts;
      onRouting(layer, Array.from(experts.subarray(at, at + k)), Array.from(weights.subarray(at, at + k)));
    }
  }

  /** Frees the KV cache. An evaluation in flight stops at its next layer; later calls throw DisposedError. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.handle.dispose();
    // The model may unmap its weights only after an evaluation in flight has stopped and freed the cache.
    void this.settled().then(() => this.host.sessionClosed(this));
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /** Resolves when every queued call has settled (used by model.dispose()). */
  /** @internal */
  async settled(): Promise<void> {
    await this.queue.catch(() => {});
  }

  private enqueue<T>(work: () => Promise<T>): Promise<T> {
    this.pending++;
    const run = this.queue.then(work, work);
    this.queue = run.then(
      () => this.pending--,
      () => this.pending--,
    );
    return run;
  }

  /** `whileEvaluating` runs on this thread once the native evaluation has started (a prefetch: errors are ignored). */
  private async evalNow(ids: Int32Array, signal: AbortSignal | undefined, whileEvaluating?: () => void): Promise<Float32Array> {
    this.checkAlive();
    if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });
    if (this.host.slidingWindow === null && this.length + ids.length > this.contextSize) {
      throw new ContextOverflowError(
        `${this.length} cached + ${ids.length} new tokens exceed the session's context size ${this.contextSize}`,
      );
    }
    const onAbort = () => this.handle.requestAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const evaluation = this.handle.eval(ids);
      if (whileEvaluating !== undefined) {
        try {
          whileEvaluating();
        } catch {
          // Whatever failed fails again, and is reported, where its result is needed.
        }
      }
      await evaluation;
    } catch (error) {
      if (this.disposed) throw new DisposedError("the session");
      const typed = fromNativeError(error);
      // An aborted eval is undone, except chunks a sliding-window cache could no longer take back.
      if (typed instanceof AbortError) this.append(ids.subarray(0, this.handle.position() - this.length));
      this.logitsCurrent = false;
      throw typed instanceof AbortError && signal?.aborted ? new AbortError(undefined, { cause: signal.reason }) : typed;
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
    if (this.disposed) throw new DisposedError("the session");
    this.append(ids);
    this.logitsCurrent = true;
    return this.logits;
  }

  private append(ids: Int32Array): void {
    if (this.length + ids.length > this.history.length) {
      let size = this.history.length * 2;
      while (size < this.length + ids.length) size *= 2;
      const grown = new Int32Array(size);
      grown.set(this.history.subarray(0, this.length));
      this.history = grown;
    }
    this.history.set(ids, this.length);
    this.length += ids.length;
  }

  private checkAlive(): void {
    if (this.disposed) throw new DisposedError("the session");
  }

  private checkIdle(): void {
    this.checkAlive();
    if (this.pending > 0) throw new MixtralError("SESSION_BUSY", "the session is evaluating; await it before changing the cache");
  }
}
