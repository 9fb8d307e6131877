/**
 * Stop strings over streamed text: text is released only once it cannot be the start of a stop string, so a
 * stop string split across tokens is caught and never emitted.
 * @internal
 * @module
 */
export class StopStringMatcher {
  private readonly stops: readonly string[];
  private held = "";

  constructor(stops: readonly string[]) {
    this.stops = stops.filter((s) => s.length > 0);
  }

  /** Text not yet released because it may begin a stop string. */
  get pending(): string {
    return this.held;
  }

  /**
   * Adds text; returns what can be released, and whether a stop string was completed (the stop string and
   * anything after it are dropped).
   */
  push(text: string): { released: string; stopped: boolean } {
    const buffer = this.held + text;
    let first = -1;
    for (const stop of this.stops) {
      const at = buffer.indexOf(stop);
      if (at >= 0 && (first < 0 || at < first)) first = at;
    }
    if (first >= 0) {
      this.held = "";
      return { released: buffer.slice(0, first), stopped: true };
    }
    const keep = this.longestPrefixOverlap(buffer);
    this.held = buffer.slice(buffer.length - keep);
    return { released: buffer.slice(0, buffer.length - keep), stopped: false };
  }

  /** Releases whatever is held (generation ended for another reason). */
  flush(): string {
    const text = this.held;
    this.held = "";
    return text;
  }

  /** Length of the longest suffix of buffer that is a proper prefix of some stop string. */
  private longestPrefixOverlap(buffer: string): number {
    let best = 0;
    for (const stop of this.stops) {
      for (let length = Math.min(stop.length - 1, buffer.length); length > best; length--) {
        if (buffer.endsWith(stop.slice(0, length))) {
          best = length;
          break;
        }
      }
    }
    return best;
  }
}
