/**
 * Chat prompt formatting: a conversation rendered with the model's Jinja chat template, then tokenized so that
 * only the template's own text can produce control tokens.
 *
 * How a rendered prompt becomes tokens (as llama.cpp tokenizes a rendered prompt, minus the injection):
 * 1. The template is rendered twice: once with the real message contents, once with each content wrapped in two
 *    private-use sentinel characters that occur nowhere else. Stripping the sentinels from the second render
 *    must give the first; the sentinels then say exactly which characters came from a message.
 * 2. Outside the messages, the texts of control tokens (`<s>`, `</s>`, `<unk>`) become their ids. Inside a
 *    message they are plain text, so a user who types `</s>[INST]` gets the tokens for those characters.
 * 3. The text between two control tokens is one run, tokenized as a whole with special tokens off and the
 *    SentencePiece space prefix (llama.cpp prefixes a space after every special token), so template text and
 *    message text that touch merge as they would in one string.
 * @module
 */
import { Template } from "@huggingface/jinja";

import { ArgumentTypeError, MixtralError } from "./errors.js";
import { TokenType, type Tokenizer } from "./tokenizer/tokenizer.js";
import { checkBoolean, checkOptions, checkString } from "./validate.js";

/**
 * Who said a message.
 * @example
 * ```ts
 * const role: ChatRole = "assistant";
 * ```
 */
export type ChatRole = "system" | "user" | "assistant";

/**
 * One message of a conversation.
 * @example
 * ```ts
 * const history: ChatMessage[] = [{ role: "user", content: "Hi" }, { role: "assistant", content: "Hello!" }];
 * ```
 */
export interface ChatMessage {
  role: ChatRole;
  content: string;
}

/**
 * Options of {@link Mixtral.applyChatTemplate}.
 * @example
 * ```ts
 * model.applyChatTemplate(messages, { safePrompt: true, addGenerationPrompt: true });
 * ```
 */
export interface ApplyChatTemplateOptions {
  /**
   * Render the opening of the assistant's reply (the template's `add_generation_prompt`). Default false, as Hugging
   * Face's `apply_chat_template`; Mixtral's template renders the same either way.
   */
  addGenerationPrompt?: boolean;
  /** Prepend Mistral's guardrail ({@link MISTRAL_SAFE_PROMPT}) to the system prompt. Default false. */
  safePrompt?: boolean;
  /** A Jinja chat template to use instead of the file's. */
  template?: string;
}

export const APPLY_CHAT_TEMPLATE_OPTION_KEYS = ["addGenerationPrompt", "safePrompt", "template"] as const;

/**
 * A chat template (or the prompt it produced) that this library cannot use (code `CHAT_TEMPLATE_ERROR`): it does
 * not parse, raised an exception (e.g. roles that do not alternate), or rewrote message text beyond recognition.
 * @example
 * ```ts
 * try { model.applyChatTemplate([{ role: "user", content: "a" }, { role: "user", content: "b" }]); }
 * catch (err) { if (err instanceof ChatTemplateError) console.error(err.message); } // "… roles must alternate …"
 * ```
 */
export class ChatTemplateError extends MixtralError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("CHAT_TEMPLATE_ERROR", message, options);
  }
}

/**
 * Mixtral-8x7B-Instruct-v0.1's chat template, exactly as its `tokenizer_config.json` ships it: the built-in
 * format for files without `tokenizer.chat_template`. It renders `<s>[INST] user [/INST]answer</s>[INST] …`.
 * Like the original it has no system role: a system message is prepended to the first user message, separated
 * by a blank line, as Mistral's reference tokenizer does (see {@link Mixtral.applyChatTemplate}).
 * @example
 * ```ts
 * const chat = model.createChat({ template: MIXTRAL_INSTRUCT_TEMPLATE }); // ignore the file's template
 * ```
 */
export const MIXTRAL_INSTRUCT_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}" +
  "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
  "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}" +
  "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}" +
  "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}";

/**
 * Mistral's guardrail system prompt (the `safe_prompt` of Mistral's API), which `safePrompt: true` prepends.
 * @example
 * ```ts
 * const chat = model.createChat({ safePrompt: true }); // the system prompt starts with this text
 * ```
 */
export const MISTRAL_SAFE_PROMPT =
  "Always assist with care, respect, and truth. Respond with utmost utility yet securely. Avoid harmful, " +
  "unethical, prejudiced, or negative content. Ensure replies promote fairness and positivity.";

/** Between a system prompt and the message it is merged into, as mistral-common's instruct tokenizer joins them. */
const SYSTEM_SEPARATOR = "\n\n";

const ROLES: readonly string[] = ["system", "user", "assistant"];

/** Validates a message list at the API edge and returns plain copies. */
export function checkMessages(name: string, messages: unknown): ChatMessage[] {
  if (!Array.isArray(messages)) throw new ArgumentTypeError(`${name} must be an array of { role, content } messages`);
  return messages.map((message: unknown, i) => {
    if (message === null || typeof message !== "object") throw new ArgumentTypeError(`${name}[${i}] must be an object with role and content`);
    checkOptions(`${name}[${i}]`, message, ["role", "content"]);
    const { role, content } = message as { role: unknown; content: unknown };
    if (typeof role !== "string" || !ROLES.includes(role)) {
      const message = `${name}[${i}].role must be "system", "user" or "assistant"; got ${JSON.stringify(role)}`;
      throw new ArgumentTypeError(message, typeof role === "string" ? "ERR_INVALID_ARG_VALUE" : "ERR_INVALID_ARG_TYPE");
    }
    return { role: role as ChatRole, content: checkString(`${name}[${i}].content`, content) };
  });
}

/** The messages with the guardrail in front of the system prompt (a system message is added if there is none). */
export function withSafePrompt(messages: readonly ChatMessage[]): ChatMessage[] {
  if (messages[0]?.role === "system") {
    const system = messages[0].content;
    return [{ role: "system", content: system === "" ? MISTRAL_SAFE_PROMPT : MISTRAL_SAFE_PROMPT + SYSTEM_SEPARATOR + system }, ...messages.slice(1)];
  }
  return [{ role: "system", content: MISTRAL_SAFE_PROMPT }, ...messages];
}

export function checkApplyOptions(options: unknown): { addGenerationPrompt: boolean; safePrompt: boolean; template: string | undefined } {
  const o = checkOptions<ApplyChatTemplateOptions>("options", options, APPLY_CHAT_TEMPLATE_OPTION_KEYS);
  return {
    addGenerationPrompt: o.addGenerationPrompt === undefined ? false : checkBoolean("options.addGenerationPrompt", o.addGenerationPrompt),
    safePrompt: o.safePrompt === undefined ? false : checkBoolean("options.safePrompt", o.safePrompt),
    template: o.template === undefined ? undefined : checkString("options.template", o.template, { allowEmpty: false }),
  };
}

/** A rendered prompt: the text, and where the message contents sit in it (sorted, disjoint [start, end) ranges). */
export interface RenderedPrompt {
  readonly text: string;
  readonly contentRanges: readonly (readonly [number, number])[];
}

/** A control token the template's text can produce. */
interface SpecialToken {
  text: string;
  id: number;
}

const specialTokenCache = new WeakMap<Tokenizer, { pattern: RegExp | null; ids: Map<string, number> }>();

/** Control and unknown tokens by text, longest first (as llama.cpp's special-token partition tries them). */
function specialTokens(tokenizer: Tokenizer): { pattern: RegExp | null; ids: Map<string, number> } {
  let cached = specialTokenCache.get(tokenizer);
  if (cached === undefined) {
    const found: SpecialToken[] = [];
    for (let id = 0; id < tokenizer.vocabSize; id++) {
      const type = tokenizer.tokenType(id);
      if (type !== TokenType.CONTROL && type !== TokenType.UNKNOWN) continue;
      const text = tokenizer.tokenText(id);
      if (text !== "") found.push({ text, id });
    }
    found.sort((a, b) => b.text.length - a.text.length);
    const ids = new Map<string, number>();
    for (const { text, id } of found) if (!ids.has(text)) ids.set(text, id);
    const escaped = [...ids.keys()].map((text) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
    cached = { pattern: escaped.length > 0 ? new RegExp(escaped.join("|"), "g") : null, ids };
    specialTokenCache.set(tokenizer, cached);
  }
  return cached;
}

/** Two characters of the Private Use Area that appear in none of `texts`. */
function pickSentinels(texts: readonly string[]): [string, string] {
  const picked: string[] = [];
  for (let code = 0xe000; code <= 0xf8ff && picked.length < 2; code++) {
    const c = String.fromCharCode(code);
    if (!texts.some((t) => t.includes(c))) picked.push(c);
  }
  if (picked.length < 2) throw new ChatTemplateError("the messages use every private-use character; cannot mark them in the template");
  return [picked[0], picked[1]];
}

/**
 * One chat template over one tokenizer: renders conversations and tokenizes the result.
 * @internal
 */
export class ChatFormatter {
  /** The Jinja source in use. */
  readonly source: string;
  private readonly template: Template;
  private readonly tokenizer: Tokenizer;
  private readonly bosText: string;
  private readonly eosText: string;
  private systemRole: boolean | undefined;

  constructor(source: string, tokenizer: Tokenizer) {
    this.source = source;
    this.tokenizer = tokenizer;
    try {
      this.template = new Template(source);
    } catch (error) {
      throw new ChatTemplateError(`the chat template does not parse: ${(error as Error).message}`, { cause: error });
    }
    this.bosText = tokenizer.bos === null ? "" : tokenizer.tokenText(tokenizer.bos);
    this.eosText = tokenizer.eos === null ? "" : tokenizer.tokenText(tokenizer.eos);
  }

  /**
   * Renders `messages`. A system message goes to the template when it has a system role; otherwise (Mixtral's
   * template raises on one) it is prepended to the first user message, separated by a blank line.
   */
  render(messages: readonly ChatMessage[], addGenerationPrompt: boolean): RenderedPrompt {
    const prepared = this.supportsSystemRole() ? messages : mergeSystemMessage(messages);
    const contents = prepared.map((m) => m.content);
    const [open, close] = pickSentinels([...contents, this.source]);
    const plain = this.renderRaw(prepared, addGenerationPrompt);
    const marked = this.renderRaw(prepared.map((m) => ({ role: m.role, content: open + m.content + close })), addGenerationPrompt);
    const ranges: [number, number][] = [];
    let text = "";
    let start = -1;
    for (const c of marked) {
      if (c === open) {
        if (start >= 0) return this.locateContents(plain, contents);
        start = text.length;
      } else if (c === close) {
        if (start < 0) return this.locateContents(plain, contents);
        if (text.length > start) ranges.push([start, text.length]);
        start = -1;
      } else {
        text += c;
      }
    }
    if (start >= 0 || text !== plain) return this.locateContents(plain, contents);
    return { text, contentRanges: ranges };
  }

  /**
   * Tokens of `prompt.text` from offset `from` (0, or the start of a control token in the template's text; other
   * offsets return null). Control-token texts outside message contents become control ids.
   */
  tokenize(prompt: RenderedPrompt, from = 0): Int32Array | null {
    const { text, contentRanges } = prompt;
    const { pattern, ids } = specialTokens(this.tokenizer);
    const out: number[] = [];
    let runStart = from;
    let splitIsValid = from === 0;
    const flushRun = (end: number) => {
      if (end > runStart) {
        for (const id of this.tokenizer.encode(text.slice(runStart, end), { addBos: false, addEos: false, special: false })) out.push(id);
      }
    };
    // Walk the template's own text (the gaps between contents) for control tokens.
    let gapStart = 0;
    for (let r = 0; r <= contentRanges.length; r++) {
      const gapEnd = r < contentRanges.length ? contentRanges[r][0] : text.length;
      if (pattern !== null && gapEnd > gapStart) {
        pattern.lastIndex = 0;
        const gap = text.slice(gapStart, gapEnd);
        for (let match = pattern.exec(gap); match !== null; match = pattern.exec(gap)) {
          const at = gapStart + match.index;
          if (at < from) continue;
          if (at === from) splitIsValid = true;
          flushRun(at);
          out.push(ids.get(match[0])!);
          runStart = at + match[0].length;
        }
      }
      if (r < contentRanges.length) gapStart = contentRanges[r][1];
    }
    if (!splitIsValid) return null;
    flushRun(text.length);
    return Int32Array.from(out);
  }

  private supportsSystemRole(): boolean {
    if (this.systemRole === undefined) {
      const probe = "\u{1F9EA}system\u{1F9EA}";
      try {
        this.systemRole = this.renderRaw([{ role: "system", content: probe }, { role: "user", content: "u" }], true).includes(probe);
      } catch {
        this.systemRole = false;
      }
    }
    return this.systemRole;
  }

  private renderRaw(messages: readonly ChatMessage[], addGenerationPrompt: boolean): string {
    try {
      return this.template.render({
        messages,
        bos_token: this.bosText,
        eos_token: this.eosText,
        add_generation_prompt: addGenerationPrompt,
      });
    } catch (error) {
      throw new ChatTemplateError(`the chat template failed: ${(error as Error).message}`, { cause: error });
    }
  }

  /**
   * For templates that change message text on the way (a `| trim`, say): find each content, or its trimmed form,
   * in order. A content that cannot be found is refused rather than left where it could inject control tokens.
   */
  private locateContents(plain: string, contents: readonly string[]): RenderedPrompt {
    const ranges: [number, number][] = [];
    let at = 0;
    for (const content of contents) {
      if (content.trim() === "") continue;
      let found = plain.indexOf(content, at);
      let length = content.length;
      if (found < 0) {
        found = plain.indexOf(content.trim(), at);
        length = content.trim().length;
      }
      if (found < 0) {
        throw new ChatTemplateError("the chat template rewrites message text, so mixtral-native cannot tell it from the template's own");
      }
      ranges.push([found, found + length]);
      at = found + length;
    }
    return { text: plain, contentRanges: ranges };
  }
}

/** Mistral's rule for templates without a system role: the system prompt opens the first user message. */
function mergeSystemMessage(messages: readonly ChatMessage[]): ChatMessage[] {
  const out: ChatMessage[] = [];
  let system: string | undefined;
  for (const message of messages) {
    if (message.role === "system") {
      system = system === undefined ? message.content : system + SYSTEM_SEPARATOR + message.content;
    } else if (message.role === "user" && system !== undefined) {
      out.push({ role: "user", content: system === "" ? message.content : system + SYSTEM_SEPARATOR + message.content });
      system = undefined;
    } else {
      out.push(message);
    }
  }
  return out;
}
