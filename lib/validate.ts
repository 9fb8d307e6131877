/**
 * Argument checks shared by the public API. Each throws an ArgumentTypeError or ArgumentRangeError (a TypeError or
 * RangeError with Node's `code`) whose message names the argument and the bad value, before any native work starts.
 * @internal
 * @module
 */

import { ArgumentRangeError, ArgumentTypeError } from "./errors.js";

/**
 * A short description of a bad argument for an error message: strings quoted (cut at 40 characters), numbers as
 * written, and objects by kind ("an array of length 3", "a Float32Array of length 8", "an object", "a Map").
 * @internal
 */
export function describeValue(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "function") return "a function";
  if (value === null || typeof value !== "object") return String(value);
  // A revoked proxy or a throwing getter must not turn the caller's argument error into another error.
  try {
    if (Array.isArray(value)) return `an array of length ${value.length}`;
    if (ArrayBuffer.isView(value)) return `a ${value.constructor.name} of ${"length" in value ? `length ${value.length}` : `${value.byteLength} bytes`}`;
    const prototype = Object.getPrototypeOf(value);
    if (prototype === Object.prototype || prototype === null) return "an object";
    const name = (prototype as { constructor?: { name?: unknown } }).constructor?.name;
    return typeof name === "string" && name !== "" ? `a ${name}` : "an object";
  } catch {
    return "an object";
  }
}

/**
 * Throws TypeError for an options argument that is not a plain object, or has keys outside `allowed` (naming
 * the closest valid one, so a typo like `temprature` is caught). `undefined` means no options.
 */
export function checkOptions<T extends object>(name: string, options: unknown, allowed: readonly (keyof T & string)[]): T {
  if (options === undefined) return {} as T;
  if (options === null || typeof options !== "object" || Array.isArray(options)) {
    throw new ArgumentTypeError(`${name} must be an object; got ${describeValue(options)}`);
  }
  assertKnownOptions(options, allowed, name);
  return options as T;
}

/**
 * Throws a TypeError when `options` has a key outside `validNames`, listing the valid ones (and the closest
 * match, so `temprature` suggests `temperature`). Reusable by any API that takes an options object.
 *
 * @example
 * ```ts
 * assertKnownOptions({ temprature: 1 }, ["temperature", "topK"], "options"); // TypeError: … did you mean "temperature"?
 * ```
 */
export function assertKnownOptions(options: object, validNames: readonly string[], argumentName: string): void {
  for (const key of Object.keys(options)) {
    if (validNames.includes(key)) continue;
    const suggestion = closestName(key, validNames);
    const hint = suggestion ? ` (did you mean "${suggestion}"?)` : "";
    throw new ArgumentTypeError(`${argumentName} has an unknown option "${key}"${hint}; valid options: ${validNames.join(", ")}`, "ERR_INVALID_ARG_VALUE");
  }
}

function closestName(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      bestDistance = distance;
      best = candidate;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length];
}


export function checkString(name: string, value: unknown, { allowEmpty = true } = {}): string {
  if (typeof value !== "string") throw new ArgumentTypeError(`${name} must be a string; got ${describeValue(value)}`);
  if (!allowEmpty && value.length === 0) throw new ArgumentRangeError(`${name} must not be empty`);
  return value;
}

/** One of `choices` (strings). */
export function checkChoice<T extends string>(name: string, value: unknown, choices: readonly T[]): T {
  if (typeof value === "string" && (choices as readonly string[]).includes(value)) return value as T;
  const listed = choices.map((c) => JSON.stringify(c));
  const expected = listed.length > 1 ? `${listed.slice(0, -1).join(", ")} or ${listed[listed.length - 1]}` : listed[0];
  const message = `${name} must be ${expected}; got ${describeValue(value)}`;
  throw typeof value === "string" ? new ArgumentRangeError(message, "ERR_INVALID_ARG_VALUE") : new ArgumentTypeError(message);
}

/** A non-empty Float32Array of logits (one per vocabulary entry); the samplers and the grammar mask read them. */
export function checkLogits(name: string, value: unknown): Float32Array {
  if (!(value instanceof Float32Array)) throw new ArgumentTypeError(`${name} must be a Float32Array; got ${describeValue(value)}`);
  if (value.length === 0) throw new ArgumentRangeError(`${name} must not be empty`);
  return value;
}

/** One stop string or a list of them, as a list. */
export function checkStops(name: string, value: unknown): string[] {
  if (typeof value === "string") return [value];
  if (!Array.isArray(value)) throw new ArgumentTypeError(`${name} must be a string or an array of strings; got ${describeValue(value)}`);
  return value.map((s, i) => checkString(`${name}[${i}]`, s));
}

export function checkBoolean(name: string, value: unknown): boolean {
  if (typeof value !== "boolean") throw new ArgumentTypeError(`${name} must be a boolean; got ${describeValue(value)}`);
  return value;
}

/** An integer in [min, max]. */
export function checkInteger(name: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== "number") throw new ArgumentTypeError(`${name} must be an integer; got ${describeValue(value)}`);
  if (!Number.isInteger(value)) throw new ArgumentRangeError(`${name} must be an integer; got ${describeValue(value)}`);
  if (value < min || value > max) {
    throw new ArgumentRangeError(`${name} must be between ${min} and ${max === Number.MAX_SAFE_INTEGER ? "2^53" : max}; got ${value}`);
  }
  return value;
}

/** A finite number in [min, max]. */
export function checkNumber(name: string, value: unknown, min = -Infinity, max = Infinity): number {
  if (typeof value !== "number") throw new ArgumentTypeError(`${name} must be a number; got ${describeValue(value)}`);
  if (!Number.isFinite(value)) throw new ArgumentRangeError(`${name} must be a finite number; got ${describeValue(value)}`);
  if (value < min || value > max) throw new ArgumentRangeError(`${name} must be between ${min} and ${max}; got ${value}`);
  return value;
}

export function checkFunction<F extends (...args: never[]) => unknown>(name: string, value: unknown): F {
  if (typeof value !== "function") throw new ArgumentTypeError(`${name} must be a function; got ${describeValue(value)}`);
  return value as F;
}

export function checkSignal(name: string, value: unknown): AbortSignal | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof AbortSignal)) throw new ArgumentTypeError(`${name} must be an AbortSignal; got ${describeValue(value)}`);
  return value;
}

/**
 * Token ids: a non-empty array-like of integers in [0, nVocab). Returns them as a fresh Int32Array.
 * RangeError names the bad id and its position.
 */
export function checkTokens(name: string, tokens: unknown, nVocab: number, { allowEmpty = false } = {}): Int32Array {
  if (tokens === null || typeof tokens !== "object" || typeof (tokens as ArrayLike<unknown>).length !== "number") {
    throw new ArgumentTypeError(`${name} must be an array or typed array of token ids; got ${describeValue(tokens)}`);
  }
  const list = tokens as ArrayLike<unknown>;
  if (list.length === 0 && !allowEmpty) throw new ArgumentRangeError(`${name} must not be empty`);
  const out = new Int32Array(list.length);
  for (let i = 0; i < list.length; i++) {
    const id = list[i];
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0 || id >= nVocab) {
      throw new ArgumentRangeError(`${name}[${i}] is ${describeValue(id)}, not a token id in [0, ${nVocab})`);
    }
    out[i] = id;
  }
  return out;
}
