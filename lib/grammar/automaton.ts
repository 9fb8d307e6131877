/**
 * The grammar as a lazily built deterministic automaton over bytes.
 *
 * A matcher configuration is, as in llama.cpp, the set of pushdown stacks whose top is a byte-set element. Here
 * stacks are hash-consed nodes (position, parent) so each has an integer id, and each distinct set of stacks is
 * interned as a *state* with a 256-entry transition row filled on first use. After warm-up, advancing by a byte
 * is one array read, which is what lets the token masker walk a 56k-node vocabulary trie in well under a
 * millisecond.
 *
 * Calls are tail-call optimised (a rule reference at the end of an alternative pushes no return frame), so
 * repetition loops do not grow the stack and a grammar without true recursion — every JSON-schema grammar —
 * has finitely many states. Truly recursive grammars grow states with nesting depth; past `maxStates` the
 * tables are flushed and users replay their bytes (see {@link Automaton.epoch}).
 * @module
 */
import { BYTES, END, type FlatGrammar } from "./compile.js";

/** State 0: no stack survives. Every transition from it leads back to it. */
export const DEAD = 0;

const UNKNOWN = -1;

export class Automaton {
  readonly grammar: FlatGrammar;
  /** Incremented by every flush; state ids from an older epoch are meaningless. */
  epoch = 0;
  /** Transition table, 256 entries per state: target state, or -1 when not yet computed. */
  transitions: Int32Array = new Int32Array(0);
  /** 1 when the state includes the empty stack, i.e. the text so far is a complete match. */
  accepting: Uint8Array = new Uint8Array(0);
  /** Per state, 8 words: the bytes that lead from the state back to itself (valid when selfLoopKnown). */
  private selfLoops: Uint32Array = new Uint32Array(0);
  private selfLoopKnown: Uint8Array = new Uint8Array(0);
  stateCount = 0;
  initial = DEAD;

  private readonly maxStates: number;
  private readonly positionCount: number;
  private nodePositions = new Int32Array(1024);
  private nodeParents = new Int32Array(1024);
  private nodeCount = 1; // node 0 is the empty stack
  private nodeIds = new Map<number, number>();
  private stateStacks: Int32Array[] = [];
  private stateIds = new Map<string, number>();

  // Scratch for closures.
  private readonly seen = new Set<number>();
  private readonly found: number[] = [];
  private readonly work: number[] = [];

  constructor(grammar: FlatGrammar, maxStates = 20_000) {
    this.grammar = grammar;
    this.maxStates = maxStates;
    this.positionCount = grammar.kinds.length;
    this.reset();
  }

  /** True when the tables have grown past the budget; the owner decides when to {@link flush}. */
  get overBudget(): boolean {
    return this.stateCount > this.maxStates;
  }

  /** Drops every state and stack; increments {@link epoch}. */
  flush(): void {
    this.epoch++;
    this.reset();
  }

  /** The state after `byte` from `state` (DEAD when the byte is not allowed). */
  step(state: number, byte: number): number {
    const target = this.transitions[state * 256 + byte];
    return target !== UNKNOWN ? target : this.computeTransition(state, byte);
  }

  /** The state after `bytes` from `state`, DEAD as soon as one is rejected. */
  stepAll(state: number, bytes: Uint8Array): number {
    for (let i = 0; i < bytes.length && state !== DEAD; i++) state = this.step(state, bytes[i]);
    return state;
  }

  /**
   * True when every byte in `set` (8 words at `setWords[offset]`) leads from `state` straight back to `state`.
   * Then any byte string over `set` keeps the automaton in `state`: a whole trie subtree is allowed at once.
   */
  loopsOver(state: number, setWords: Uint32Array, offset: number): boolean {
    if (this.selfLoopKnown[state] === 0) {
      for (let byte = 0; byte < 256; byte++) {
        if (this.step(state, byte) === state) this.selfLoops[state * 8 + (byte >> 5)] |= 1 << (byte & 31);
      }
      this.selfLoopKnown[state] = 1;
    }
    const base = state * 8;
    for (let w = 0; w < 8; w++) if ((setWords[offset + w] & ~this.selfLoops[base + w]) !== 0) return false;
    return true;
  }

  /**
   * Fills the whole transition row of `state` and returns the target for `byte`. Bytes that select the same
   * stacks lead to the same state, so the row costs one closure per group of bytes (a handful), not 256.
   */
  computeTransition(state: number, byte: number): number {
    const { args, byteSets } = this.grammar;
    const stacks = this.stateStacks[state];
    const row = state * 256;
    const targetBySelection = new Map<string, number>();
    for (let b = 0; b < 256; b++) {
      const word = b >> 5;
      const bit = 1 << (b & 31);
      let selection = "";
      for (let i = 0; i < stacks.length; i++) {
        const node = stacks[i];
        if (node !== 0 && (byteSets[args[this.nodePositions[node]] * 8 + word] & bit) !== 0) selection += `${i},`;
      }
      let target = targetBySelection.get(selection);
      if (target === undefined) {
        target = selection === "" ? DEAD : this.advance(stacks, selection);
        targetBySelection.set(selection, target);
      }
      this.transitions[row + b] = target;
    }
    return this.transitions[row + byte];
  }

  /** The state after advancing the stacks listed in `selection` (indices into `stacks`) past their byte. */
  private advance(stacks: Int32Array, selection: string): number {
    this.beginClosure();
    let accept = false;
    for (const index of selection.split(",")) {
      if (index === "") continue;
      const node = stacks[Number(index)];
      accept = this.closure(this.nodePositions[node] + 1, this.nodeParents[node]) || accept;
    }
    return this.internState(accept);
  }

  private reset(): void {
    this.nodePositions = new Int32Array(1024);
    this.nodeParents = new Int32Array(1024);
    this.nodeCount = 1;
    this.nodeIds = new Map();
    this.stateStacks = [];
    this.stateIds = new Map();
    this.stateCount = 0;
    this.transitions = new Int32Array(256 * 64).fill(UNKNOWN);
    this.accepting = new Uint8Array(64);
    this.selfLoops = new Uint32Array(8 * 64);
    this.selfLoopKnown = new Uint8Array(64);
    this.beginClosure();
    const dead = this.internState(false);
    this.transitions.fill(DEAD, dead * 256, dead * 256 + 256);
    this.beginClosure();
    let accept = false;
    for (const start of this.grammar.alternatives[this.grammar.root]) accept = this.closure(start, 0) || accept;
    this.initial = this.internState(accept);
  }

  private beginClosure(): void {
    this.seen.clear();
    this.found.length = 0;
  }

  /**
   * Expands (pos, parent) until every stack's top is a byte set, adding those stacks to `found`.
   * Returns true when some path completes the root (the empty stack is reached).
   */
  private closure(startPos: number, startParent: number): boolean {
    const { kinds, args, alternatives } = this.grammar;
    const work = this.work;
    const positionCount = this.positionCount;
    let accept = false;
    work.push(startPos, startParent);
    while (work.length > 0) {
      const parent = work.pop()!;
      const pos = work.pop()!;
      const key = parent * positionCount + pos;
      if (this.seen.has(key)) continue;
      this.seen.add(key);
      const kind = kinds[pos];
      if (kind === END) {
        if (parent === 0) accept = true;
        else work.push(this.nodePositions[parent], this.nodeParents[parent]);
      } else if (kind === BYTES) {
        this.found.push(this.internNode(pos, parent));
      } else {
        const next = pos + 1;
        const frame = kinds[next] === END ? parent : this.internNode(next, parent);
        for (const start of alternatives[args[pos]]) work.push(start, frame);
      }
    }
    return accept;
  }

  private internNode(pos: number, parent: number): number {
    const key = parent * this.positionCount + pos;
    let id = this.nodeIds.get(key);
    if (id !== undefined) return id;
    id = this.nodeCount++;
    if (id >= this.nodePositions.length) {
      const positions = new Int32Array(this.nodePositions.length * 2);
      positions.set(this.nodePositions);
      this.nodePositions = positions;
      const parents = new Int32Array(this.nodeParents.length * 2);
      parents.set(this.nodeParents);
      this.nodeParents = parents;
    }
    this.nodePositions[id] = pos;
    this.nodeParents[id] = parent;
    this.nodeIds.set(key, id);
    return id;
  }

  /** Interns the set in `found` (plus the empty stack when `accept`) as a state. */
  private internState(accept: boolean): number {
    const stacks = Int32Array.from(new Set(this.found)).sort();
    const key = (accept ? "a" : "") + stacks.join(",");
    let id = this.stateIds.get(key);
    if (id !== undefined) return id;
    id = this.stateCount++;
    if (id * 256 >= this.transitions.length) {
      const transitions = new Int32Array(this.transitions.length * 2).fill(UNKNOWN);
      transitions.set(this.transitions);
      this.transitions = transitions;
      const accepting = new Uint8Array(this.accepting.length * 2);
      accepting.set(this.accepting);
      this.accepting = accepting;
      const selfLoops = new Uint32Array(this.selfLoops.length * 2);
      selfLoops.set(this.selfLoops);
      this.selfLoops = selfLoops;
      const selfLoopKnown = new Uint8Array(this.selfLoopKnown.length * 2);
      selfLoopKnown.set(this.selfLoopKnown);
      this.selfLoopKnown = selfLoopKnown;
    }
    this.stateStacks.push(stacks);
    this.accepting[id] = accept ? 1 : 0;
    this.stateIds.set(key, id);
    return id;
  }
}
