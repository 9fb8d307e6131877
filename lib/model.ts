/**
 * Loading a model and creating sessions over it.
 * @module
 */
import { readFileSync, readdirSync } from "node:fs";
import { availableParallelism } from "node:os";

import { Chat, type ChatHost, type ChatOptions } from "./chat.js";
import { ChatFormatter, MIXTRAL_INSTRUCT_TEMPLATE, checkApplyOptions, checkMessages, withSafePrompt, type ApplyChatTemplateOptions, type ChatMessage } from "./chat-template.js";
import { AbortError, ArgumentRangeError, DisposedError, withNativeErrors, withNativeErrorsSync } from "./errors.js";
import { toModelInfo, type ModelInfo } from "./gguf/inspect.js";
import { checkPath, readGguf } from "./gguf/reader.js";
import { GgufValueType } from "./gguf/types.js";
import { native, type NativeLoadControl, type NativeModelHandle, type WeightMemory } from "./native.js";
import { SESSION_OPTION_KEYS, Session, type SessionHost, type SessionOptions } from "./session.js";
import { Tokenizer } from "./tokenizer/tokenizer.js";
import { checkBoolean, checkChoice, checkFunction, checkInteger, checkOptions, checkSignal } from "./validate.js";

/**
 * Options of {@link Mixtral.load}.
 * @example
 * ```ts
 * const model = await Mixtral.load(path, { threads: 4, onProgress: (p) => console.log(p), signal: AbortSignal.timeout(60_000) });
 * ```
 */
export interface LoadOptions {
  /** Compute threads. Default: the number of physical cores. */
  threads?: number;
  /**
   * Where the weights live while the model runs.
   * - `"mapped"` (default): used in place from the file's memory map. Loading is instant, pages are read from disk
   *   as they are first needed, and processes that load the same file share them.
   * - `"copied"`: read into this process's memory at load, in 2 MiB pages where the system grants them. Loading
   *   reads the whole file and RAM must hold all of it. In exchange, decode no longer depends on how the page cache
   *   holds the file (on the benchmark machine: as fast as a mapping whose file is cached in 2 MiB folios, 5–26%
   *   faster than one partly in small pages; docs/performance.md, "Where the weights live"), and the file may be
   *   replaced or deleted while the model runs. Rejects with `OUT_OF_MEMORY` when the file is larger than the
   *   memory available.
   * - `"repacked"`: the Q4_0 and Q4_K weight matrices (those of Q4_0 and Q4_K_M files) are copied at load into
   *   this process's memory with their rows interleaved (128 at a time for Q4_0, 64 for Q4_K), and every other
   *   tensor stays mapped. Prefill runs faster (on the benchmark machine 1.8–2.0× for the Q4_0 Mixtral slice and
   *   1.3–1.5× for Q4_K_M, 1.4–1.6× on dense slices; docs/performance.md, "Repacked weights"), Q4_0 decode 17–33%
   *   faster, and Q4_K_M decode about as fast. On AVX-512 logits differ from the other modes in the last bits (each
   *   block's terms are added once, in another order); single-token and batched evaluation still agree to the bit.
   *   Loading reads and rewrites those matrices (1–2.3 s for a 2 GB file there), and RAM must hold them: rejects with
   *   `OUT_OF_MEMORY` when they are larger than the memory available. On AVX2 the logits are the mapped ones to
   *   the bit (on a Zen 3 CPU the Q4_0 Mixtral slice decoded 1.7× and Q4_K_M 1.1× as fast as mapped, and both
   *   prefilled 1.1–1.2× as fast). Models with no matrix the CPU's kernels can repack load as `"mapped"`
   *   ({@link Mixtral.weights} says which).
   */
  weights?: WeightMemory;
  /**
   * Attention window W (position i sees (i−W, i]); `null` for full attention. Default: the file's
   * `llama.attention.sliding_window`, or full attention when it has none.
   */
  slidingWindow?: number | null;
  /** Experts per token (1 … expert count). Default: the file's `llama.expert_used_count`. */
  expertsPerToken?: number;
  /** Scan every tensor for NaN/Inf while loading (reads the whole file). Default false. */
  verifyTensorData?: boolean;
  /**
   * Called with the fraction of the load done, in [0, 1]: 0 at the start, rising values about every 100 ms while
   * the file is copied, scanned or repacked (`weights: "copied"` or `"repacked"`, `verifyTensorData`), and 1 once the
   * model is ready. If it throws, the load stops and rejects with that error.
   */
  onProgress?: (progress: number) => void;
  /**
   * Aborts the load: a copy, scan or repack in progress stops within one chunk of tens of MiB, the memory it took is
   * freed, and the promise rejects with AbortError.
   */
  signal?: AbortSignal;
}

const LOAD_OPTION_KEYS = ["threads", "weights", "slidingWindow", "expertsPerToken", "verifyTensorData", "onProgress", "signal"] as const;

/** How often a load's progress is read while it runs. */
const PROGRESS_INTERVAL_MS = 100;

/**
 * Passes each rise of the load's progress below 1 to onProgress until stopped (the caller reports 1 once the model is
 * ready). An onProgress that throws aborts the load; `failure` then holds what it threw.
 */
function pollProgress(control: NativeLoadControl, onProgress: (progress: number) => void): { stop(): void; failure?: { error: unknown } } {
  let reported = 0;
  const poll: { stop(): void; failure?: { error: unknown } } = { stop: () => clearInterval(timer) };
  const timer = setInterval(() => {
    const progress = control.progress();
    if (progress <= reported || progress >= 1) return;
    reported = progress;
    try {
      onProgress(progress);
    } catch (error) {
      poll.failure = { error };
      control.requestAbort();
      clearInterval(timer);
    }
  }, PROGRESS_INTERVAL_MS);
  timer.unref();
  return poll;
}

/**
 * Physical cores on Linux (distinct core ids per package); elsewhere the logical CPU count.
 * @example
 * ```ts
 * const model = await Mixtral.load(path, { threads: Math.max(1, physicalCoreCount() - 1) }); // leave one for the UI
 * ```
 */
export function physicalCoreCount(): number {
  try {
    const cores = new Set<string>();
    for (const entry of readdirSync("/sys/devices/system/cpu")) {
      if (!/^cpu\d+$/.test(entry)) continue;
      const base = `/sys/devices/system/cpu/${entry}/topology`;
      cores.add(`${readFileSync(`${base}/physical_package_id`, "utf8").trim()}:${readFileSync(`${base}/core_id`, "utf8").trim()}`);
    }
    if (cores.size > 0) return cores.size;
  } catch {
    // not Linux, or no sysfs: fall through
  }
  return availableParallelism();
}

/**
 * A Mixtral (or dense Mistral / Llama) model loaded from a GGUF file. The weights stay in the file's memory map or
 * are read into memory at load (see {@link LoadOptions.weights}).
 * @example
 * ```ts
 * import { Mixtral } from "mixtral-native";
 * const model = await Mixtral.load("mixtral-8x7b-instruct.Q4_K_M.gguf");
 * const session = model.createSession();
 * for await (const { text } of session.generate("[INST] Hi! [/INST]", { maxTokens: 64 })) process.stdout.write(text);
 * await model.dispose();
 * ```
 */
export class Mixtral implements AsyncDisposable {
  /** The hyperparameters and file facts, as `mixtral-native info --json` prints them. */
  readonly info: ModelInfo;
  /** The model's tokenizer (built from the file's `tokenizer.ggml.*` metadata). */
  readonly tokenizer: Tokenizer;
  /** Compute threads in use. */
  readonly threads: number;
  /** Where the weights live ({@link LoadOptions.weights}): `"mapped"` when `"repacked"` was asked for but did not apply. */
  readonly weights: WeightMemory;
  /** The file's `tokenizer.chat_template` (Jinja), or null when it has none (chats then use the built-in format). */
  readonly chatTemplate: string | null;
  private handle: NativeModelHandle | undefined;
  private readonly sessions = new Set<Session>();
  private disposing: Promise<void> | undefined;
  private readonly formatters = new Map<string, ChatFormatter>();

  private constructor(handle: NativeModelHandle, info: ModelInfo, tokenizer: Tokenizer, threads: number, chatTemplate: string | null) {
    this.handle = handle;
    this.weights = handle.weights();
    this.info = info;
    this.tokenizer = tokenizer;
    this.threads = threads;
    this.chatTemplate = chatTemplate;
  }

  /** Maps (or reads) and validates the file off the main thread. Throws GgufError for a file it cannot run. */
  static async load(path: string, options?: LoadOptions): Promise<Mixtral> {
    checkPath(path);
    const o = checkOptions<LoadOptions>("options", options, LOAD_OPTION_KEYS);
    const threads = o.threads === undefined ? physicalCoreCount() : checkInteger("options.threads", o.threads, 1, 1024);
    const weights = o.weights === undefined ? "mapped" : checkChoice("options.weights", o.weights, ["mapped", "copied", "repacked"] as const);
    let slidingWindow = -1;
    if (o.slidingWindow === null) slidingWindow = 0;
    else if (o.slidingWindow !== undefined) slidingWindow = checkInteger("options.slidingWindow", o.slidingWindow, 1, 2 ** 31 - 1);
    const expertsPerToken = o.expertsPerToken === undefined ? 0 : checkInteger("options.expertsPerToken", o.expertsPerToken, 1, 256);
    const verifyTensorData = o.verifyTensorData === undefined ? false : checkBoolean("options.verifyTensorData", o.verifyTensorData);
    const onProgress = o.onProgress === undefined ? undefined : checkFunction<(p: number) => void>("options.onProgress", o.onProgress);
    const signal = checkSignal("options.signal", o.signal);
    if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });

    onProgress?.(0);
    const control = new (native().NativeLoadControl)();
    const abort = (): void => control.requestAbort();
    signal?.addEventListener("abort", abort, { once: true });
    const progress = onProgress === undefined ? undefined : pollProgress(control, onProgress);
    // The engine maps and validates the file while the tokenizer reads its metadata: both run on the thread pool.
    const [loaded, read] = await Promise.allSettled([
      withNativeErrors(() => native().loadModel(path, { threads, weights, slidingWindow, expertsPerToken, verifyTensorData }, control)),
      readGguf(path),
    ]);
    signal?.removeEventListener("abort", abort);
    progress?.stop();
    const stopped = signal?.aborted ? { error: new AbortError(undefined, { cause: signal.reason }) } : progress?.failure;
    if (loaded.status === "rejected") throw stopped !== undefined ? stopped.error : loaded.reason;
    const handle = loaded.value;
    let tokenizer: Tokenizer;
    let chatTemplate: string | null = null;
    try {
      if (stopped !== undefined) throw stopped.error;
      if (read.status === "rejected") throw read.reason;
      const { metadata } = read.value;
      tokenizer = Tokenizer.fromGgufMetadata(metadata);
      const template = metadata.get("tokenizer.chat_template");
      if (template?.type === GgufValueType.STRING && typeof template.value === "string" && template.value !== "") chatTemplate = template.value;
    } catch (error) {
      handle.dispose();
      throw error;
    }
    const model = new Mixtral(handle, toModelInfo(handle.info()), tokenizer, threads, chatTemplate);
    try {
      onProgress?.(1);
    } catch (error) {
      await model.dispose();
      throw error;
    }
    return model;
  }

  /** True after {@link dispose}. */
  get isDisposed(): boolean {
    return this.handle === undefined;
  }

  /**
   * A new session with its own KV cache.
   * @example
   * ```ts
   * const session = model.createSession({ contextSize: 2048 });
   * ```
   */
  createSession(options?: SessionOptions): Session {
    const handle = this.alive();
    const o = checkOptions<SessionOptions>("options", options, SESSION_OPTION_KEYS);
    const { contextLength, nVocab, slidingWindow } = this.info;
    const contextSize = o.contextSize === undefined ? Math.min(contextLength, 4096) : checkInteger("options.contextSize", o.contextSize, 1, contextLength);
    const batchSize = o.batchSize === undefined ? 512 : checkInteger("options.batchSize", o.batchSize, 1, 65536);
    const kvType = o.kvCacheType === undefined ? "f16" : checkChoice("options.kvCacheType", o.kvCacheType, ["f16", "f32"] as const);
    let expertsPerToken: number | undefined;
    if (o.expertsPerToken !== undefined) {
      if (this.info.nExperts === 0) throw new ArgumentRangeError("options.expertsPerToken cannot be set: the model is dense (it has no experts)", "ERR_INVALID_ARG_VALUE");
      expertsPerToken = checkInteger("options.expertsPerToken", o.expertsPerToken, 1, this.info.nExpertsUsed);
    }
    const logits = new Float32Array(nVocab);
    const NativeSession = native().NativeSession;
    const nativeSession = withNativeErrorsSync(() => new NativeSession(handle, { contextSize, batchSize, kvType }, logits));
    const host: SessionHost = {
      nVocab,
      nLayers: this.info.nLayers,
      nExperts: this.info.nExperts,
      expertsPerToken: this.info.nExpertsUsed,
      slidingWindow,
      tokenizer: this.tokenizer,
      sessionClosed: (session) => this.sessions.delete(session),
    };
    const session = new Session(host, nativeSession, logits, slidingWindow === null ? contextSize : Infinity);
    this.sessions.add(session);
    if (expertsPerToken !== undefined) session.setExpertsPerToken(expertsPerToken);
    return session;
  }

  /**
   * A conversation with its own KV cache, formatted with the file's chat template (or the built-in
   * Mixtral-Instruct format). See {@link Chat}.
   * @example
   * ```ts
   * const chat = model.createChat({ systemPrompt: "You are terse." });
   * console.log((await chat.send("Name three primes.", { temperature: 0 })).text);
   * ```
   */
  createChat(options?: ChatOptions): Chat {
    this.alive();
    const host: ChatHost = {
      tokenizer: this.tokenizer,
      nExperts: this.info.nExperts,
      expertsPerToken: this.info.nExpertsUsed,
      createSession: (sessionOptions) => {
        const defined = Object.fromEntries(Object.entries(sessionOptions).filter(([, v]) => v !== undefined));
        return this.createSession(defined);
      },
      formatter: (template) => this.formatter(template),
    };
    return new Chat(host, options);
  }

  /**
   * Renders `messages` with the model's chat template (the file's `tokenizer.chat_template`, else the built-in
   * Mixtral-Instruct one) and returns the prompt text. A system message goes to the template when it has a
   * system role; Mixtral's has none, so it is prepended to the first user message with a blank line, as
   * Mistral's reference tokenizer does.
   * @example
   * ```ts
   * model.applyChatTemplate([{ role: "system", content: "Be brief." }, { role: "user", content: "Hi" }]);
   * // "<s>[INST] Be brief.\n\nHi [/INST]"
   * ```
   */
  applyChatTemplate(messages: readonly ChatMessage[], options?: ApplyChatTemplateOptions): string {
    this.alive();
    const list = checkMessages("messages", messages);
    const o = checkApplyOptions(options);
    return this.formatter(o.template).render(o.safePrompt ? withSafePrompt(list) : list, o.addGenerationPrompt).text;
  }

  /** Compiled templates by source: the default one is parsed once per model. */
  private formatter(template: string | undefined): ChatFormatter {
    const source = template ?? this.chatTemplate ?? MIXTRAL_INSTRUCT_TEMPLATE;
    let formatter = this.formatters.get(source);
    if (formatter === undefined) {
      formatter = new ChatFormatter(source, this.tokenizer);
      if (template === undefined) this.formatters.set(source, formatter);
    }
    return formatter;
  }

  /** Disposes every session (in-flight work stops at its next layer), then unmaps the file. */
  dispose(): Promise<void> {
    this.disposing ??= (async () => {
      const open = [...this.sessions];
      for (const session of open) session.dispose();
      await Promise.all(open.map((session) => session.settled()));
      this.handle?.dispose();
      this.handle = undefined;
    })();
    return this.disposing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }

  private alive(): NativeModelHandle {
    if (this.handle === undefined || this.disposing) throw new DisposedError("the model");
    return this.handle;
  }
}

