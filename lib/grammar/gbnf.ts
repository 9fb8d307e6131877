/**
 * GBNF (llama.cpp's grammar format, grammars/README.md) → syntax tree.
 *
 * Supported: `name ::= alternatives` rules, `|`, grouping `( )`, string literals `"…"`, character classes
 * `[a-z]` / `[^…]` with ranges, `.` (any character), repetition `*` `+` `?` `{m}` `{m,}` `{m,n}`, escapes
 * `\x hh`, `\u hhhh`, `\U hhhhhhhh`, `\t \r \n \\ \" \[ \] \-`, and `#` comments. As in llama.cpp, a newline
 * ends a rule except inside parentheses and after `|` or `::=`; in addition a line that starts with `|`
 * continues the previous rule. Rule names use letters, digits, `-` and `_`.
 * Not supported: llama.cpp's token references `<[id]>` / `<text>` / `!<…>` (a syntax error says so).
 * @module
 */
import { GrammarError } from "./errors.js";
import { ArgumentTypeError } from "../errors.js";
import { describeValue } from "../validate.js";

/**
 * A node of a parsed GBNF rule body ({@link parseGbnf}); character classes hold inclusive code-point ranges, and
 * a repeat without an upper bound has `max` Infinity.
 * @example
 * ```ts
 * import { parseGbnf, type GbnfExpression } from "mixtral-native";
 * const refs = (e: GbnfExpression): string[] =>
 *   e.kind === "ref" ? [e.name]
 *   : e.kind === "sequence" ? e.items.flatMap(refs)
 *   : e.kind === "alternation" ? e.options.flatMap(refs)
 *   : e.kind === "repeat" ? refs(e.item) : [];
 * refs(parseGbnf('root ::= "no" digit{2}\ndigit ::= [0-9]').rules[0].body); // ["digit"]
 * ```
 */
export type GbnfExpression =
  | { readonly kind: "literal"; readonly codePoints: readonly number[] }
  | { readonly kind: "class"; readonly negated: boolean; readonly ranges: readonly (readonly [number, number])[] }
  | { readonly kind: "any" }
  | { readonly kind: "ref"; readonly name: string; readonly line: number; readonly column: number }
  | { readonly kind: "sequence"; readonly items: readonly GbnfExpression[] }
  | { readonly kind: "alternation"; readonly options: readonly GbnfExpression[] }
  | { readonly kind: "repeat"; readonly item: GbnfExpression; readonly min: number; readonly max: number };

/**
 * One `name ::= body` rule of a parsed grammar, with the 1-based line and column where it starts.
 * @example
 * ```ts
 * import { parseGbnf, type GbnfRule } from "mixtral-native";
 * const [root]: readonly GbnfRule[] = parseGbnf('root ::= "yes" | "no"').rules;
 * console.log(root.name, root.body.kind, root.line); // root alternation 1
 * ```
 */
export interface GbnfRule {
  readonly name: string;
  readonly body: GbnfExpression;
  readonly line: number;
  readonly column: number;
}

/**
 * A parsed GBNF grammar: its rules in source order, before rule names are resolved (that happens when a
 * {@link Grammar} compiles it).
 * @example
 * ```ts
 * import { parseGbnf, type GbnfGrammar } from "mixtral-native";
 * const grammar: GbnfGrammar = parseGbnf('root ::= item+\nitem ::= [a-z] " "');
 * console.log(grammar.rules.map((rule) => rule.name)); // ["root", "item"]
 * ```
 */
export interface GbnfGrammar {
  readonly rules: readonly GbnfRule[];
}

/** Largest `m` or `n` accepted in `{m,n}` (llama.cpp allows 2000; JSON `maxLength` needs more). */
export const MAX_REPETITION = 10_000;

const MAX_CODE_POINT = 0x10ffff;

class Parser {
  private readonly text: string;
  private pos = 0;

  constructor(text: string) {
    this.text = text;
  }

  parse(): GbnfGrammar {
    const rules: GbnfRule[] = [];
    this.skipSpace(true);
    while (this.pos < this.text.length) {
      rules.push(this.parseRule());
      this.skipSpace(true);
    }
    return { rules };
  }

  private parseRule(): GbnfRule {
    const { line, column } = this.location(this.pos);
    const name = this.parseName("a rule name");
    this.skipSpace(false);
    if (!this.text.startsWith("::=", this.pos)) this.fail(`expected "::=" after rule name "${name}"`);
    this.pos += 3;
    this.skipSpace(true);
    const body = this.parseAlternation(false);
    const next = this.peek();
    if (next !== undefined && next !== "\n" && next !== "\r") {
      if (next === ")") this.fail(`unbalanced ")"`);
      this.fail(`unexpected ${describe(next)} in rule "${name}"`);
    }
    return { name, body, line, column };
  }

  private parseAlternation(nested: boolean): GbnfExpression {
    const options = [this.parseSequence(nested)];
    for (;;) {
      if (this.peek() === "|") {
        this.pos++;
        this.skipSpace(true);
        options.push(this.parseSequence(nested));
        continue;
      }
      if (!nested && this.continuesOnNextLine()) continue;
      break;
    }
    return options.length === 1 ? options[0] : { kind: "alternation", options };
  }

  /** A line whose first symbol is `|` continues the rule above it (an extension over llama.cpp). */
  private continuesOnNextLine(): boolean {
    const start = this.pos;
    this.skipSpace(true);
    if (this.peek() === "|" && this.pos > start) return true;
    this.pos = start;
    return false;
  }

  private parseSequence(nested: boolean): GbnfExpression {
    const items: GbnfExpression[] = [];
    for (;;) {
      const c = this.peek();
      if (c === undefined) break;
      let item: GbnfExpression;
      if (c === '"') item = this.parseLiteral();
      else if (c === "[") item = this.parseClass();
      else if (c === ".") {
        this.pos++;
        item = { kind: "any" };
      } else if (c === "(") {
        this.pos++;
        this.skipSpace(true);
        item = this.parseAlternation(true);
        if (this.peek() !== ")") this.fail(this.peek() === undefined ? `unclosed "(": expected ")" before the end` : `expected ")"`);
        this.pos++;
      } else if (isNameChar(c)) {
        const { line, column } = this.location(this.pos);
        const name = this.parseName("a rule name");
        item = { kind: "ref", name, line, column };
      } else if (c === "*" || c === "+" || c === "?" || c === "{") {
        this.fail(`"${c}" must follow an item to repeat`); // after an item the postfix loop below takes it
      } else if (c === "<" || c === "!") {
        this.fail("token references (<[id]>, <text>, !<…>) are not supported; use string literals");
      } else if (c === "'") {
        this.fail(`string literals use double quotes ("…"), not single quotes`);
      } else {
        break;
      }
      items.push(item);
      this.skipSpace(nested);
      while (this.peek() === "*" || this.peek() === "+" || this.peek() === "?" || this.peek() === "{") {
        const last = items.pop()!;
        items.push(this.parsePostfix(last));
        this.skipSpace(nested);
      }
    }
    return items.length === 1 ? items[0] : { kind: "sequence", items };
  }

  private parsePostfix(item: GbnfExpression): GbnfExpression {
    const c = this.text[this.pos++];
    if (c === "*") return { kind: "repeat", item, min: 0, max: Infinity };
    if (c === "+") return { kind: "repeat", item, min: 1, max: Infinity };
    if (c === "?") return { kind: "repeat", item, min: 0, max: 1 };
    this.skipSpace(true);
    const min = this.parseCount();
    this.skipSpace(true);
    let max = min;
    if (this.peek() === ",") {
      this.pos++;
      this.skipSpace(true);
      max = isDigit(this.peek()) ? this.parseCount() : Infinity;
      this.skipSpace(true);
    }
    if (this.peek() !== "}") this.fail(`expected "}" to close the repetition`);
    this.pos++;
    if (max < min) this.fail(`repetition {${min},${max}} has its maximum below its minimum`, this.pos - 1);
    return { kind: "repeat", item, min, max };
  }

  private parseCount(): number {
    const start = this.pos;
    while (isDigit(this.peek())) this.pos++;
    if (this.pos === start) this.fail("expected a number in the repetition {m,n}");
    const value = Number(this.text.slice(start, this.pos));
    if (value > MAX_REPETITION) this.fail(`repetition count ${value} exceeds the limit ${MAX_REPETITION}`, start);
    return value;
  }

  private parseLiteral(): GbnfExpression {
    const open = this.pos++;
    const codePoints: number[] = [];
    for (;;) {
      const c = this.peek();
      if (c === undefined) this.fail(`unterminated string literal`, open);
      if (c === '"') break;
      if (c === "\n" || c === "\r") this.fail(`newline inside a string literal (write \\n), or a missing closing quote`, open);
      codePoints.push(this.parseChar());
    }
    this.pos++;
    return { kind: "literal", codePoints };
  }

  private parseClass(): GbnfExpression {
    const open = this.pos++;
    let negated = false;
    if (this.peek() === "^") {
      negated = true;
      this.pos++;
    }
    const ranges: [number, number][] = [];
    for (;;) {
      const c = this.peek();
      if (c === undefined || c === "\n" || c === "\r") this.fail(`unterminated character class: expected "]"`, open);
      if (c === "]") break;
      const rangeStart = this.pos;
      const low = this.parseChar();
      let high = low;
      if (this.peek() === "-" && this.text[this.pos + 1] !== "]" && this.pos + 1 < this.text.length) {
        this.pos++;
        high = this.parseChar();
        if (high < low) this.fail(`character range ends below its start`, rangeStart);
      }
      ranges.push([low, high]);
    }
    this.pos++;
    if (ranges.length === 0 && !negated) this.fail(`empty character class "[]" matches nothing`, open);
    return { kind: "class", negated, ranges };
  }

  private parseChar(): number {
    const c = this.text.codePointAt(this.pos)!;
    if (c !== 0x5c) {
      this.pos += c > 0xffff ? 2 : 1;
      return c;
    }
    const escapeStart = this.pos;
    const kind = this.text[this.pos + 1];
    this.pos += 2;
    switch (kind) {
      case "x":
        return this.parseHex(2, escapeStart);
      case "u":
        return this.parseHex(4, escapeStart);
      case "U":
        return this.parseHex(8, escapeStart);
      case "t":
        return 9;
      case "r":
        return 13;
      case "n":
        return 10;
      case "\\":
      case '"':
      case "[":
      case "]":
      case "-":
        return kind.charCodeAt(0);
      default:
        this.fail(kind === undefined ? "unterminated escape" : `unknown escape "\\${kind}"`, escapeStart);
    }
  }

  private parseHex(digits: number, escapeStart: number): number {
    const hex = this.text.slice(this.pos, this.pos + digits);
    if (hex.length !== digits || !/^[0-9a-fA-F]+$/.test(hex)) {
      this.fail(`expected ${digits} hex digits in the escape`, escapeStart);
    }
    this.pos += digits;
    const value = parseInt(hex, 16);
    if (value > MAX_CODE_POINT) this.fail(`code point U+${hex.toUpperCase()} is beyond U+10FFFF`, escapeStart);
    if (value >= 0xd800 && value <= 0xdfff) this.fail(`U+${hex.toUpperCase()} is a surrogate, not a character`, escapeStart);
    return value;
  }

  private parseName(what: string): string {
    const start = this.pos;
    while (isNameChar(this.peek())) this.pos++;
    if (this.pos === start) this.fail(`expected ${what}${this.peek() === undefined ? "" : `, found ${describe(this.peek()!)}`}`);
    return this.text.slice(start, this.pos);
  }

  /** Skips spaces, tabs and comments; newlines too when `newlines`. */
  private skipSpace(newlines: boolean): void {
    const text = this.text;
    while (this.pos < text.length) {
      const c = text[this.pos];
      if (c === " " || c === "\t") this.pos++;
      else if (c === "#") {
        while (this.pos < text.length && text[this.pos] !== "\n" && text[this.pos] !== "\r") this.pos++;
      } else if (newlines && (c === "\n" || c === "\r")) this.pos++;
      else break;
    }
  }

  private peek(): string | undefined {
    return this.pos < this.text.length ? this.text[this.pos] : undefined;
  }

  private location(offset: number): { line: number; column: number } {
    let line = 1;
    let lineStart = 0;
    for (let i = 0; i < offset; i++) {
      const c = this.text[i];
      if (c === "\n" || (c === "\r" && this.text[i + 1] !== "\n")) {
        line++;
        lineStart = i + 1;
      }
    }
    // Columns count code points, as an editor shows them.
    const column = Array.from(this.text.slice(lineStart, offset)).length + 1;
    return { line, column };
  }

  private fail(message: string, offset = this.pos): never {
    const { line, column } = this.location(offset);
    throw new GrammarError("GRAMMAR_SYNTAX", `GBNF syntax error at line ${line}, column ${column}: ${message}`, { line, column });
  }
}

function isNameChar(c: string | undefined): c is string {
  if (c === undefined) return false;
  const code = c.charCodeAt(0);
  return (code >= 97 && code <= 122) || (code >= 65 && code <= 90) || (code >= 48 && code <= 57) || c === "-" || c === "_";
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= "0" && c <= "9";
}

function describe(c: string): string {
  if (c === "\n" || c === "\r") return "end of line";
  return `"${c}"`;
}

/**
 * Parses GBNF text into rules.
 *
 * @example
 * ```ts
 * parseGbnf('root ::= [0-9]+').rules[0].body; // { kind: "repeat", item: { kind: "class", … }, min: 1, max: Infinity }
 * ```
 * Syntax only: rule references are resolved by the compiler, which reports
 * undefined rules and a missing `root`.
 * @throws GrammarError with code `GRAMMAR_SYNTAX`, `line` and `column`.
 */
export function parseGbnf(text: string): GbnfGrammar {
  if (typeof text !== "string") throw new ArgumentTypeError(`grammar must be a string of GBNF; got ${describeValue(text)}`);
  return new Parser(text).parse();
}
