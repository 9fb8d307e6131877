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

interface StateGroups {
  readonly sets: Int32Array;
  readonly groups: number[][];
  readonly targets: Map<number | string, number>;
}

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
  /** Per state, built on its first transition: stacks grouped by top byte set, and targets by selection. */
  private stateGroups: (StateGroups | undefined)[] = [];
  /** States by a hash of their sorted stacks (buckets resolve collisions). */
  private stateIds = new Map<number, number[]>();

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
   * Computes (and records) the target of `byte` from `state`. Bytes that select the same stacks lead to the same
   * state, so each state remembers its targets by selection and runs one closure per distinct selection.
   */
  computeTransition(state: number, byte: number): number {
    const info = (this.stateGroups[state] ??= this.groupStacks(state));
    const { sets, groups, targets } = info;
    const byteSets = this.grammar.byteSets;
    const word = byte >> 5;
    const bit = 1 << (byte & 31);
    let target: number | undefined;
    if (sets.length <= 31) {
      let mask = 0;
      for (let g = 0; g < sets.length; g++) if ((byteSets[sets[g] * 8 + word] & bit) !== 0) mask |= 1 << g;
      target = mask === 0 ? DEAD : targets.get(mask);
      if (target === undefined) {
        target = this.advance(groups, (g) => (mask & (1 << g)) !== 0);
        targets.set(mask, target);
      }
    } else {
      const selected: number[] = [];
      for (let g = 0; g < sets.length; g++) if ((byteSets[sets[g] * 8 + word] & bit) !== 0) selected.push(g);
      const key = selected.join(",");
      target = selected.length === 0 ? DEAD : targets.get(key);
      if (target === undefined) {
        const chosen = new Set(selected);
        target = this.advance(groups, (g) => chosen.has(g));
        targets.set(key, target);
      }
    }
    this.transitions[state * 256 + byte] = target;
    return target;
  }

  /** Groups a state's stacks by the byte set on top: an enum of 1000 words has ~26 groups, not 1000 stacks. */
  private groupStacks(state: number): StateGroups {
    const args = this.grammar.args;
    const groupBySet = new Map<number, number[]>();
    for (const node of this.stateStacks[state]) {
      if (node === 0) continue;
      const set = args[this.nodePositions[node]];
      const group = groupBySet.get(set);
      if (group === undefined) groupBySet.set(set, [node]);
      else group.push(node);
    }
    return { sets: Int32Array.from(groupBySet.keys()), groups: [...groupBySet.values()], targets: new Map() };
  }

  /** The state after advancing every stack of the chosen groups past its byte. */
  private advance(groups: number[][], chosen: (group: number) => boolean): number {
    this.beginClosure();
    let accept = false;
    for (let g = 0; g < groups.length; g++) {
      if (!chosen(g)) continue;
      for (const node of groups[g]) accept = this.closure(this.nodePositions[node] + 1, this.nodeParents[node]) || accept;
    }
    return this.internState(accept);
  }

  private reset(): void {
    this.nodePositions = new Int32Array(1024);
    this.nodeParents = new Int32Array(1024);
    this.nodeCount = 1;
    this.nodeIds = new Map();
    this.stateStacks = [];
    this.stateGroups = [];
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
    // `found` has no duplicates: the closure visits each (position, parent) once.
    const stacks = Int32Array.from(this.found).sort();
    let hash = accept ? 0x9e3779b9 : 0x85ebca6b;
    for (let i = 0; i < stacks.length; i++) hash = Math.imul(hash ^ stacks[i], 0x01000193);
    const bucket = this.stateIds.get(hash);
    if (bucket !== undefined) {
      for (const candidate of bucket) {
        if (this.accepting[candidate] === (accept ? 1 : 0) && sameStacks(this.stateStacks[candidate], stacks)) return candidate;
      }
    }
    let id: number;
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
    if (bucket === undefined) this.stateIds.set(hash, [id]);
    else bucket.push(id);
    return id;
  }
}

function sameStacks(a: Int32Array, b: Int32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
