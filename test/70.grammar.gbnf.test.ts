import { describe, expect, it } from "vitest";
import { Grammar, GrammarError, TokenVocabulary, parseGbnf } from "../lib/grammar/index.js";
import { loadMistralPieces } from "./helpers/mistral-pieces.js";

const ARITHMETIC = `
# Arithmetic with precedence; one optional space around operators.
root   ::= expr
expr   ::= term (ws [-+] ws term)*
term   ::= factor (ws [*/] ws factor)*
factor ::= number | "(" ws expr ws ")" | "-" factor
number ::= [0-9]+ ("." [0-9]+)?
ws     ::= " "?
`;

/** An independent recursive-descent recognizer of the same language, to hold the grammar to. */
function isArithmetic(text: string): boolean {
  let pos = 0;
  const space = () => {
    if (text[pos] === " ") pos++;
  };
  const digits = () => {
    const start = pos;
    while (pos < text.length && text[pos] >= "0" && text[pos] <= "9") pos++;
    return pos > start;
  };
  // Backtracking over the optional spaces: try each choice and keep a successful full parse.
  const parseAll = (parser: () => boolean) => {
    const start = pos;
    if (parser() && pos === text.length) return true;
    pos = start;
    return false;
  };
  function factor(): boolean {
    if (text[pos] === "-") {
      pos++;
      return factor();
    }
    if (text[pos] === "(") {
      pos++;
      space();
      if (!expr()) return false;
      space();
      if (text[pos] !== ")") return false;
      pos++;
      return true;
    }
    if (!digits()) return false;
    if (text[pos] === ".") {
      pos++;
      return digits();
    }
    return true;
  }
  function chain(item: () => boolean, operators: string): boolean {
    if (!item()) return false;
    for (;;) {
      const save = pos;
      space();
      if (!operators.includes(text[pos] ?? "\0")) {
        pos = save;
        return true;
      }
      pos++;
      space();
      if (!item()) return false;
    }
  }
  function term(): boolean {
    return chain(factor, "*/");
  }
  function expr(): boolean {
    return chain(term, "+-");
  }
  return parseAll(expr);
}

describe("70 grammar: GBNF arithmetic", () => {
  const grammar = Grammar.fromGbnf(ARITHMETIC);

  it("accepts well-formed expressions", () => {
    for (const text of ["1", "1+2", "1 + 2", "(1+2)*3", "-4.5 / (2 - -3)", "((7))", "10*2-3/4", "0.25"]) {
      expect(grammar.matches(text), text).toBe(true);
    }
  });

  it("rejects malformed ones, and reports unfinished ones as prefixes", () => {
    for (const text of ["", "1+", "(1", "1 +  2", "1..2", "a", "1)", "+1", " 1", "1 "]) expect(grammar.matches(text), text).toBe(false);
    for (const text of ["1+", "(1", "-", "((2 *"]) expect(grammar.isPrefix(text), text).toBe(true);
    for (const text of ["1)", "a", "1..", "+"]) expect(grammar.isPrefix(text), text).toBe(false);
  });

  it("agrees with an independent recognizer on 30000 random strings over its alphabet", () => {
    const alphabet = "0123456789+-*/(). ";
    let state = 12345;
    let accepted = 0;
    for (let i = 0; i < 30000; i++) {
      let text = "";
      const length = 1 + (i % 9);
      for (let j = 0; j < length; j++) {
        state = (Math.imul(state, 1103515245) + 12345) >>> 0;
        // Bias towards digits so a fair share of strings are valid.
        const pick = state >>> 16;
        text += pick % 3 === 0 ? alphabet[pick % alphabet.length] : String(pick % 10);
      }
      const expected = isArithmetic(text);
      if (grammar.matches(text) !== expected) expect.fail(`"${text}": grammar ${!expected}, recognizer ${expected}`);
      if (expected) accepted++;
    }
    expect(accepted).toBeGreaterThan(3000);
  });
});

describe('70 grammar: a grammar of "yes" or "no"', () => {
  const grammar = Grammar.fromGbnf('root ::= "yes" | "no"');

  it("admits exactly those two among all 1555 strings of length ≤ 4 over {y,e,s,n,o,x}", () => {
    const alphabet = ["y", "e", "s", "n", "o", "x"];
    let strings = [""];
    const matched: string[] = [];
    for (let length = 0; length <= 4; length++) {
      for (const text of strings) if (grammar.matches(text)) matched.push(text);
      strings = strings.flatMap((text) => alphabet.map((c) => text + c));
    }
    expect(matched.sort()).toEqual(["no", "yes"]);
  });

  it("with the Mistral vocabulary, every token path the masker allows spells yes or no, and both are reachable", async () => {
    const { pieces, eosId } = await loadMistralPieces();
    const vocabulary = TokenVocabulary.from(pieces, { endTokens: [eosId] });
    const decoder = new TextDecoder("utf-8", { ignoreBOM: true }); // a BOM piece must not decode to ""
    const first = grammar.createMatcher(vocabulary).allowedTokens();
    const expectedFirst = pieces.flatMap((piece, id) => {
      const text = decoder.decode(piece);
      return piece.length > 0 && ("yes".startsWith(text) || "no".startsWith(text)) ? [id] : [];
    });
    expect(Array.from(first)).toEqual(expectedFirst);

    const finished = new Set<string>();
    const queue: number[][] = [[]];
    while (queue.length > 0) {
      const path = queue.pop()!;
      const matcher = grammar.createMatcher(vocabulary);
      for (const token of path) matcher.acceptToken(token);
      for (const token of matcher.allowedTokens()) {
        if (token === eosId) finished.add(decoder.decode(matcher.acceptedBytes));
        else queue.push([...path, token]);
      }
    }
    expect([...finished].sort()).toEqual(["no", "yes"]);
  });
});

describe("70 grammar: GBNF syntax", () => {
  it("parses classes, negation, ranges, escapes, any, groups, repetition counts and comments", () => {
    const grammar = Grammar.fromGbnf(String.raw`
      root ::= word "\x3a" ( " " num )? tail # comment after a rule
      word ::= [a-zA-Z_]{2,4}    # 2 to 4 letters
      num  ::= [0-9]{3} | "\u00e9"+ | [\-\]\\]
      tail ::= [^\n]{0,2} "\U0001F600"?
    `);
    const accepts = ["ab:", "abcd: 123", "ab: éé", "ab: -", "ab: ]", "ab: \\", "ab:xy", "ab:x😀", "ab:😀", "a_b:"];
    const rejects = ["a:", "abcde:", "ab: 12\n", "ab:\n", "ab:xyz", "ab:12\n", "ab: \n", "12:"];
    for (const text of accepts) expect(grammar.matches(text), JSON.stringify(text)).toBe(true);
    for (const text of rejects) expect(grammar.matches(text), JSON.stringify(text)).toBe(false);
  });

  it("newlines continue a rule inside parentheses, after |, and before a line starting with |", () => {
    const grammar = Grammar.fromGbnf(`root ::= (
      "a"
      "b"
    ) |
      "c"
      | "d"
    other ::= "x"
    `);
    for (const text of ["ab", "c", "d"]) expect(grammar.matches(text), text).toBe(true);
    expect(grammar.matches("x")).toBe(false);
  });

  it("'.' and negated classes match any code point, across byte-level partial UTF-8", () => {
    const grammar = Grammar.fromGbnf('root ::= "<" [^>] "." . ">"');
    expect(grammar.matches("<é.日>")).toBe(true);
    expect(grammar.matches("<😀.\n>")).toBe(true);
    const e9 = new TextEncoder().encode("<é");
    expect(grammar.isPrefix(e9.subarray(0, 2))).toBe(true); // "<" and the first byte of é
    expect(grammar.isPrefix(Uint8Array.of(0x3c, 0xc3, 0x41))).toBe(false); // a broken continuation byte
    expect(grammar.isPrefix(Uint8Array.of(0x3c, 0xc0, 0x80))).toBe(false); // an overlong encoding
    expect(grammar.isPrefix(Uint8Array.of(0x3c, 0xed, 0xa0))).toBe(false); // a surrogate (U+D800)
    expect(grammar.isPrefix(Uint8Array.of(0x3c, 0xff))).toBe(false);
  });

  it("classes of non-ASCII ranges match their characters only", () => {
    const hiragana = Grammar.fromGbnf("root ::= [ぁ-ゟ]+");
    expect(hiragana.matches("ひらがな")).toBe(true);
    expect(hiragana.matches("カタカナ")).toBe(false);
    expect(hiragana.matches("ひらaがな")).toBe(false);
  });

  it("returns a syntax tree with the rules in order", () => {
    const tree = parseGbnf('root ::= a "x"*\na ::= [0-9]');
    expect(tree.rules.map((rule) => rule.name)).toEqual(["root", "a"]);
    expect(tree.rules[0].body).toEqual({
      kind: "sequence",
      items: [
        { kind: "ref", name: "a", line: 1, column: 10 },
        { kind: "repeat", item: { kind: "literal", codePoints: [120] }, min: 0, max: Infinity },
      ],
    });
  });
});

describe("70 grammar: malformed grammars give typed errors with line and column", () => {
  const cases: [string, string, number | undefined, number | undefined, RegExp][] = [
    ['root ::= "abc', "GRAMMAR_SYNTAX", 1, 10, /unterminated string literal/],
    ['root ::= "a"\nx = "b"', "GRAMMAR_SYNTAX", 2, 3, /expected "::=" after rule name "x"/],
    ['root ::= "a\\q"', "GRAMMAR_SYNTAX", 1, 12, /unknown escape "\\q"/],
    ['root ::= ("a" | "b"', "GRAMMAR_SYNTAX", 1, 20, /unclosed "\("/],
    ['root ::= "a" )', "GRAMMAR_SYNTAX", 1, 14, /unbalanced "\)"/],
    ["root ::= [a-", "GRAMMAR_SYNTAX", 1, 10, /unterminated character class/],
    ["root ::= [z-a]", "GRAMMAR_SYNTAX", 1, 11, /range ends below its start/],
    ['root ::= * "a"', "GRAMMAR_SYNTAX", 1, 10, /"\*" must follow an item/],
    ['root ::= "a"{3,1}', "GRAMMAR_SYNTAX", 1, 17, /maximum below its minimum/],
    ['root ::= "a"{20000}', "GRAMMAR_SYNTAX", 1, 14, /exceeds the limit 10000/],
    ['root ::= "\\x4"', "GRAMMAR_SYNTAX", 1, 11, /expected 2 hex digits/],
    ["root ::= <[12]>", "GRAMMAR_SYNTAX", 1, 10, /token references .* are not supported/],
    ["\n\n  root ::= 'a'", "GRAMMAR_SYNTAX", 3, 12, /double quotes/],
    ['root ::= "a" @', "GRAMMAR_SYNTAX", 1, 14, /unexpected "@"/],
    ['root ::= "ok"\n\n# a comment\nthing ::= "a" missing "b"', "GRAMMAR_UNDEFINED_RULE", 4, 15, /undefined rule "missing"/],
    ['start ::= "a"', "GRAMMAR_NO_ROOT", undefined, undefined, /no "root" rule/],
    ['root ::= "a"\nroot ::= "b"', "GRAMMAR_DUPLICATE_RULE", 2, 1, /"root" is defined twice/],
    ['root ::= expr\nexpr ::= expr "+" "1" | "1"', "GRAMMAR_LEFT_RECURSION", undefined, undefined, /"expr" can expand forever/],
    ['root ::= a\na ::= b? a "x" | "y"\nb ::= "b"', "GRAMMAR_LEFT_RECURSION", undefined, undefined, /left recursion/],
    ['root ::= loop\nloop ::= "a" loop', "GRAMMAR_EMPTY_LANGUAGE", undefined, undefined, /admits no string/],
  ];
  for (const [text, code, line, column, message] of cases) {
    it(`${JSON.stringify(text)} → ${code}${line ? ` at ${line}:${column}` : ""}`, () => {
      let error: unknown;
      try {
        Grammar.fromGbnf(text);
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(GrammarError);
      const grammarError = error as GrammarError;
      expect(grammarError.code).toBe(code);
      expect(grammarError.message).toMatch(message);
      expect(grammarError.line).toBe(line);
      expect(grammarError.column).toBe(column);
      if (line !== undefined) expect(grammarError.message).toContain(`line ${line}, column ${column}`);
    });
  }

  it("a non-string grammar is a TypeError", () => {
    expect(() => Grammar.fromGbnf(42 as unknown as string)).toThrow(TypeError);
  });
});
