/**
 * Typed errors. Every error this library throws on purpose has a stable `code`: a {@link MixtralError}, or for a
 * bad argument an {@link ArgumentTypeError} (a `TypeError`) or {@link ArgumentRangeError} (a `RangeError`) whose
 * message names the argument and the bad value.
 *
 * @example
 * ```ts
 * try { await Mixtral.load("broken.gguf"); }
 * catch (err) { if (err instanceof GgufError) console.error(err.code, err.message); }
 * ```
 * @module
 */

/**
 * Base class of the library's own errors. `code` is stable across versions; match on it, not on `message`.
 * @example
 * ```ts
 * try { await chat.send(text); }
 * catch (err) { if (err instanceof MixtralError) console.error(err.code); else throw err; }
 * ```
 */
export class MixtralError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/**
 * An argument of the wrong type, or of the right type but not one of the allowed values. It is a `TypeError`
 * (`name` stays `"TypeError"`); `code` is Node's own: `ERR_INVALID_ARG_TYPE`, or `ERR_INVALID_ARG_VALUE` for an
 * unknown option name or choice. Thrown before any work starts.
 * @example
 * ```ts
 * const options = JSON.parse('{ "thread": 2 }'); // a typo in a config file
 * try { await Mixtral.load(path, options); }
 * catch (err) { if (err instanceof ArgumentTypeError) console.error(err.code, err.message); }
 * // ERR_INVALID_ARG_VALUE options has an unknown option "thread" (did you mean "threads"?); …
 * ```
 */
export class ArgumentTypeError extends TypeError {
  readonly code: "ERR_INVALID_ARG_TYPE" | "ERR_INVALID_ARG_VALUE";
  constructor(message: string, code: ArgumentTypeError["code"] = "ERR_INVALID_ARG_TYPE") {
    super(message);
    this.code = code;
  }
}

/**
 * An argument outside its range: a number, a length, a token id. It is a `RangeError` (`name` stays
 * `"RangeError"`); `code` is Node's own `ERR_OUT_OF_RANGE`, or `ERR_INVALID_ARG_VALUE` for a value that no range
 * admits in this call (an empty prompt with nothing cached to continue from, an expert count for a dense model).
 * Thrown before any work starts.
 * @example
 * ```ts
 * try { await session.eval([-1]); }
 * catch (err) { if (err instanceof ArgumentRangeError) console.error(err.code, err.message); }
 * // ERR_OUT_OF_RANGE tokens[0] is -1, not a token id in [0, 32000)
 * ```
 */
export class ArgumentRangeError extends RangeError {
  readonly code: "ERR_OUT_OF_RANGE" | "ERR_INVALID_ARG_VALUE";
  constructor(message: string, code: ArgumentRangeError["code"] = "ERR_OUT_OF_RANGE") {
    super(message);
    this.code = code;
  }
}

/**
 * A GGUF file that cannot be used: unreadable, malformed, hostile, or not a model this library runs.
 * Codes start with `GGUF_` (the container) or `MODEL_` (the hyperparameters and tensors), for example
 * `GGUF_TRUNCATED`, `GGUF_BAD_OFFSET`, `MODEL_SHAPE_MISMATCH`; `GGUF_WRITE_FAILED` when a file cannot be written
 * (the system error, with its own `code` such as `ENOSPC`, is the `cause`).
 * @example
 * ```ts
 * try { await Mixtral.load(path); }
 * catch (err) { if (err instanceof GgufError && err.code === "GGUF_TRUNCATED") console.error("download it again"); }
 * ```
 */
export class GgufError extends MixtralError {}

/**
 * The tokens do not fit the session's context (code `CONTEXT_OVERFLOW`).
 * @example
 * ```ts
 * try { await session.eval(longPrompt); }
 * catch (err) { if (err instanceof ContextOverflowError) session.reset(); }
 * ```
 */
export class ContextOverflowError extends MixtralError {
  constructor(message: string) {
    super("CONTEXT_OVERFLOW", message);
  }
}

/**
 * The model, session or chat was disposed before or during the call (code `DISPOSED`).
 * @example
 * ```ts
 * await model.dispose();
 * try { model.createSession(); } catch (err) { console.log(err instanceof DisposedError); } // true
 * ```
 */
export class DisposedError extends MixtralError {
  constructor(what: string) {
    super("DISPOSED", `${what} has been disposed`);
  }
}

/**
 * The operation was stopped by an AbortSignal (code `ABORT_ERR`, name `AbortError`, as Node's own).
 * @example
 * ```ts
 * try { await session.eval(tokens, { signal: AbortSignal.timeout(1000) }); }
 * catch (err) { if (err instanceof AbortError) console.log("stopped; the cache is as before"); }
 * ```
 */
export class AbortError extends MixtralError {
  constructor(message = "The operation was aborted", options?: { cause?: unknown }) {
    super("ABORT_ERR", message, options);
    this.name = "AbortError";
  }
}

/**
 * A session state that {@link Session.loadState} refuses. Codes: `STATE_CORRUPT` (truncated, altered or not a
 * state), `STATE_UNSUPPORTED_VERSION`, `STATE_MODEL_MISMATCH` (saved with another model),
 * `STATE_SESSION_MISMATCH` (another KV cache type or sliding window, or too many tokens for the context).
 * @example
 * ```ts
 * try { session.loadState(bytes); }
 * catch (err) { if (err instanceof StateError && err.code === "STATE_MODEL_MISMATCH") session.reset(); }
 * ```
 */
export class StateError extends MixtralError {}

/**
 * {@link quantizeModel} refused its arguments before doing any work. Codes: `QUANTIZE_UNKNOWN_TYPE` (the message
 * lists the valid types), `QUANTIZE_SAME_PATH` (output is the input file), `QUANTIZE_OUTPUT_UNWRITABLE`,
 * `QUANTIZE_UNSUPPORTED_TENSOR` (an input tensor of a type this library cannot read).
 * @example
 * ```ts
 * try { await quantizeModel("in.gguf", "out.gguf", { type: "q4_k_m" }); }
 * catch (err) { if (err instanceof QuantizeError) console.error(err.code, err.message); }
 * ```
 */
export class QuantizeError extends MixtralError {}

/** @internal Turns an error thrown by the addon (a plain Error with `code`) into the matching typed error. */
export function fromNativeError(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const code = (error as { code?: unknown }).code;
  if (typeof code !== "string") return error;
  if (code.startsWith("GGUF_") || code.startsWith("MODEL_")) return new GgufError(code, error.message);
  if (code.startsWith("STATE_")) return new StateError(code, error.message);
  if (code === "CONTEXT_OVERFLOW") return new ContextOverflowError(error.message);
  if (code === "ABORT_ERR") return new AbortError(error.message);
  if (code === "ERR_OUT_OF_RANGE") return new ArgumentRangeError(error.message);
  return new MixtralError(code, error.message);
}

/** @internal Runs `work`, rethrowing addon errors as typed ones. */
export async function withNativeErrors<T>(work: () => Promise<T> | T): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw fromNativeError(error);
  }
}

/** @internal Runs `work`, rethrowing addon errors as typed ones (synchronous calls). */
export function withNativeErrorsSync<T>(work: () => T): T {
  try {
    return work();
  } catch (error) {
    throw fromNativeError(error);
  }
}
