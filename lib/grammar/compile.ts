/**
 * GBNF syntax tree → a flat byte-level grammar the automaton runs on.
 *
 * Every terminal becomes a set of bytes (string literals byte by byte, character classes through their UTF-8
 * sequences), and every group, alternation and repetition becomes a generated rule, as llama.cpp rewrites them:
 * `x*` → `S ::= x S | ε`, `x{m,n}` → m copies of x then `S(n-m)` with `S(k) ::= x S(k-1) | ε`.
 * Then: rules that can derive no string are pruned (and the grammar rejected if `root` is one of them), and
 * left recursion is rejected, since a left-recursive rule would expand forever.
 * @module
 */
import { GrammarError } from "./errors.js";
import type { GbnfExpression, GbnfGrammar } from "./gbnf.js";
import { encodeCodePoint, normalizeRanges, utf8Sequences } from "./utf8.js";

export const END = 0;
export const BYTES = 1;
export const RULE = 2;

/**
 * The compiled grammar. Positions index every element of every alternative; each alternative ends with an END
 * position. `args[pos]` is a byte-set index (BYTES) or a rule index (RULE).
 */
export interface FlatGrammar {
  readonly kinds: Uint8Array;
  readonly args: Int32Array;
  /** Start position of each alternative, per rule. */
  readonly alternatives: readonly Int32Array[];
  readonly ruleNames: readonly string[];
  /** 8 words (256 bits) per byte set. */
  readonly byteSets: Uint32Array;
  readonly root: number;
}

/** Bound on elements after expanding repetitions, so a grammar cannot exhaust memory. */
const MAX_ELEMENTS = 2_000_000;

/** Elements while building: byte set s → 2s, rule r → 2r + 1. */
type Element = number;
const bytesElement = (set: number): Element => set * 2;
const ruleElement = (rule: number): Element => rule * 2 + 1;

interface BuildRule {
  name: string;
  alternatives: Element[][];
}

class Builder {
  readonly rules: BuildRule[] = [];
  private readonly ruleByName = new Map<string, number>();
  private readonly byteSetWords: number[] = [];
  private readonly byteSetByKey = new Map<string, number>();
  private readonly classCache = new Map<string, Element>();
  private elementCount = 0;

  constructor(private readonly grammar: GbnfGrammar) {}

  build(): FlatGrammar {
    for (const rule of this.grammar.rules) {
      if (this.ruleByName.has(rule.name)) {
        throw new GrammarError("GRAMMAR_DUPLICATE_RULE", `rule "${rule.name}" is defined twice (line ${rule.line}, column ${rule.column})`, {
          line: rule.line,
          column: rule.column,
        });
      }
      this.ruleByName.set(rule.name, this.rules.length);
      this.rules.push({ name: rule.name, alternatives: [] });
    }
    const root = this.ruleByName.get("root");
    if (root === undefined) throw new GrammarError("GRAMMAR_NO_ROOT", 'the grammar has no "root" rule; output must match "root"');
    for (const rule of this.grammar.rules) {
      const index = this.ruleByName.get(rule.name)!;
      const options = rule.body.kind === "alternation" ? rule.body.options : [rule.body];
      this.rules[index].alternatives = options.map((option) => this.lower(option, rule.name));
    }
    return flatten(this.rules, Uint32Array.from(this.byteSetWords), root);
  }

  private lower(expression: GbnfExpression, owner: string): Element[] {
    switch (expression.kind) {
      case "literal": {
        const elements: Element[] = [];
        for (const codePoint of expression.codePoints) {
          for (const byte of encodeCodePoint(codePoint)) elements.push(bytesElement(this.byteSet([[byte, byte]])));
        }
        return this.count(elements);
      }
      case "class":
        return [this.characterSet(normalizeRanges(expression.ranges, expression.negated), owner)];
      case "any":
        return [this.characterSet(normalizeRanges([], true), owner)];
      case "ref": {
        const rule = this.ruleByName.get(expression.name);
        if (rule === undefined) {
          throw new GrammarError(
            "GRAMMAR_UNDEFINED_RULE",
            `undefined rule "${expression.name}" referenced at line ${expression.line}, column ${expression.column}`,
            { line: expression.line, column: expression.column },
          );
        }
        return [ruleElement(rule)];
      }
      case "sequence":
        return expression.items.flatMap((item) => this.lower(item, owner));
      case "alternation":
        return [ruleElement(this.newRule(owner, expression.options.map((option) => this.lower(option, owner))))];
      case "repeat":
        return this.lowerRepeat(expression.item, expression.min, expression.max, owner);
    }
  }

  private lowerRepeat(item: GbnfExpression, min: number, max: number, owner: string): Element[] {
    let body = this.lower(item, owner);
    if (body.length !== 1) body = [ruleElement(this.newRule(owner, [body]))];
    const elements: Element[] = [];
    for (let i = 0; i < min; i++) elements.push(...body);
    if (max === Infinity) {
      const star = this.newRule(owner, []);
      this.rules[star].alternatives = [this.count([...body, ruleElement(star)]), []];
      elements.push(ruleElement(star));
    } else if (max > min) {
      let previous = -1;
      for (let k = 1; k <= max - min; k++) {
        const tail = previous < 0 ? [] : [ruleElement(previous)];
        previous = this.newRule(owner, [[...body, ...tail], []]);
      }
      elements.push(ruleElement(previous));
    }
    return this.count(elements);
  }

  /** One byte set when every character is one byte; otherwise a rule with one alternative per UTF-8 sequence. */
  private characterSet(ranges: [number, number][], owner: string): Element {
    const key = ranges.map(([low, high]) => `${low}-${high}`).join(",");
    const cached = this.classCache.get(key);
    if (cached !== undefined) return cached;
    const sequences = utf8Sequences(ranges);
    let element: Element;
    if (sequences.every((sequence) => sequence.length === 1)) {
      element = bytesElement(this.byteSet(sequences.map((sequence) => sequence[0])));
    } else {
      // One-byte members share a single alternative; longer sequences get one each.
      const single = sequences.filter((sequence) => sequence.length === 1).map((sequence) => sequence[0]);
      const alternatives: Element[][] = [];
      if (single.length > 0) alternatives.push([bytesElement(this.byteSet(single))]);
      for (const sequence of sequences) {
        if (sequence.length > 1) alternatives.push(sequence.map((range) => bytesElement(this.byteSet([range]))));
      }
      element = ruleElement(this.newRule(`${owner}-char`, alternatives));
    }
    this.classCache.set(key, element);
    return element;
  }

  private byteSet(ranges: readonly (readonly [number, number])[]): number {
    const words = new Uint32Array(8);
    for (const [low, high] of ranges) for (let byte = low; byte <= high; byte++) words[byte >> 5] |= 1 << (byte & 31);
    const key = words.join(",");
    let index = this.byteSetByKey.get(key);
    if (index === undefined) {
      index = this.byteSetByKey.size;
      this.byteSetByKey.set(key, index);
      this.byteSetWords.push(...words);
    }
    return index;
  }

  private newRule(owner: string, alternatives: Element[][]): number {
    this.rules.push({ name: `${owner}-${this.rules.length}`, alternatives });
    for (const alternative of alternatives) this.count(alternative);
    return this.rules.length - 1;
  }

  private count(elements: Element[]): Element[] {
    this.elementCount += elements.length + 1;
    if (this.elementCount > MAX_ELEMENTS) {
      throw new GrammarError("GRAMMAR_TOO_LARGE", `the grammar expands to more than ${MAX_ELEMENTS} elements; reduce its repetition counts`);
    }
    return elements;
  }
}

/** Removes alternatives that can derive no string; throws when `root` is left with none. */
function pruneUnproductive(rules: BuildRule[], root: number): void {
  const productive = new Uint8Array(rules.length);
  const isProductive = (alternative: Element[]) => alternative.every((element) => element % 2 === 0 || productive[(element - 1) / 2] === 1);
  for (let changed = true; changed; ) {
    changed = false;
    for (let r = 0; r < rules.length; r++) {
      if (productive[r] === 0 && rules[r].alternatives.some(isProductive)) {
        productive[r] = 1;
        changed = true;
      }
    }
  }
  if (productive[root] === 0) {
    throw new GrammarError("GRAMMAR_EMPTY_LANGUAGE", 'the grammar admits no string: "root" can never be completed');
  }
  for (const rule of rules) rule.alternatives = rule.alternatives.filter(isProductive);
}

function checkLeftRecursion(rules: BuildRule[], root: number): void {
  const nullable = new Uint8Array(rules.length);
  for (let changed = true; changed; ) {
    changed = false;
    for (let r = 0; r < rules.length; r++) {
      if (nullable[r] === 0 && rules[r].alternatives.some((alt) => alt.every((e) => e % 2 === 1 && nullable[(e - 1) / 2] === 1))) {
        nullable[r] = 1;
        changed = true;
      }
    }
  }
  /** Rules reachable at the left edge of `rule` (before any byte is consumed). */
  const leftEdges = (rule: number): number[] => {
    const edges: number[] = [];
    for (const alternative of rules[rule].alternatives) {
      for (const element of alternative) {
        if (element % 2 === 0) break;
        const target = (element - 1) / 2;
        edges.push(target);
        if (nullable[target] === 0) break;
      }
    }
    return edges;
  };
  const state = new Uint8Array(rules.length); // 0 unvisited, 1 on the path, 2 done
  const visit = (start: number): void => {
    // Iterative DFS: chains of generated rules can be thousands deep.
    const path: number[] = [start];
    const pending: number[][] = [leftEdges(start)];
    state[start] = 1;
    while (path.length > 0) {
      const edges = pending[pending.length - 1];
      const next = edges.pop();
      if (next === undefined) {
        state[path.pop()!] = 2;
        pending.pop();
        continue;
      }
      if (state[next] === 1) {
        const cycle = path.slice(path.indexOf(next)).map((r) => rules[r].name);
        const named = userFacing(cycle.concat(rules[next].name));
        throw new GrammarError("GRAMMAR_LEFT_RECURSION", `left recursion: ${named} can expand forever without consuming input`);
      }
      if (state[next] === 0) {
        state[next] = 1;
        path.push(next);
        pending.push(leftEdges(next));
      }
    }
  };
  // Only rules reachable from root matter; recursion depth is bounded by the rule count.
  const reachable = new Uint8Array(rules.length);
  const stack = [root];
  reachable[root] = 1;
  while (stack.length > 0) {
    const rule = stack.pop()!;
    for (const alternative of rules[rule].alternatives) {
      for (const element of alternative) {
        if (element % 2 === 1 && reachable[(element - 1) / 2] === 0) {
          reachable[(element - 1) / 2] = 1;
          stack.push((element - 1) / 2);
        }
      }
    }
  }
  for (let r = 0; r < rules.length; r++) if (reachable[r] === 1 && state[r] === 0) visit(r);
}

/** Generated rule names carry their owner's name first; show the chain once per user rule. */
function userFacing(names: string[]): string {
  const out: string[] = [];
  for (const name of names) {
    const owner = name.replace(/(-char)?(-\d+)+$/, "");
    if (out[out.length - 1] !== owner) out.push(owner);
  }
  return out.map((name) => `"${name}"`).join(" → ");
}

function flatten(rules: BuildRule[], byteSets: Uint32Array, root: number): FlatGrammar {
  pruneUnproductive(rules, root);
  checkLeftRecursion(rules, root);
  let positions = 0;
  for (const rule of rules) for (const alternative of rule.alternatives) positions += alternative.length + 1;
  const kinds = new Uint8Array(positions);
  const args = new Int32Array(positions);
  const alternatives: Int32Array[] = [];
  let pos = 0;
  for (const rule of rules) {
    const starts = new Int32Array(rule.alternatives.length);
    rule.alternatives.forEach((alternative, i) => {
      starts[i] = pos;
      for (const element of alternative) {
        kinds[pos] = element % 2 === 0 ? BYTES : RULE;
        args[pos] = element % 2 === 0 ? element / 2 : (element - 1) / 2;
        pos++;
      }
      kinds[pos++] = END;
    });
    alternatives.push(starts);
  }
  return { kinds, args, alternatives, ruleNames: rules.map((rule) => rule.name), byteSets, root };
}

/** Compiles a parsed GBNF grammar. @throws GrammarError (undefined rules, no root, left recursion, empty). */
export function compileGrammar(grammar: GbnfGrammar): FlatGrammar {
  return new Builder(grammar).build();
}
