// Undo/redo over whole snapshots of the document. Snapshots are small (a graph of a few hundred
// nodes), which keeps undo exact without inverse operations. Consecutive changes with the same
// coalescing key (one node being dragged, one field being typed into) within a short window make
// one step, so undo goes back a gesture, not a keystroke.

export interface HistoryOptions {
  /** Most steps kept (older ones are dropped). */
  limit?: number;
  /** Changes with the same key closer than this (ms) are one step. */
  coalesceMs?: number;
}

export class History<T> {
  private past: T[] = [];
  private future: T[] = [];
  private lastKey: string | null = null;
  private lastTime = 0;
  private readonly limit: number;
  private readonly coalesceMs: number;

  constructor(
    private current: T,
    options: HistoryOptions = {},
  ) {
    this.limit = options.limit ?? 200;
    this.coalesceMs = options.coalesceMs ?? 1000;
  }

  get present(): T {
    return this.current;
  }

  get canUndo(): boolean {
    return this.past.length > 0;
  }

  get canRedo(): boolean {
    return this.future.length > 0;
  }

  /** Record a new state. With a `key` equal to the previous push's, within the window, the new
   *  state replaces the previous one instead of adding a step. */
  push(state: T, key: string | null = null, now: number = Date.now()): void {
    const coalesce = key !== null && key === this.lastKey && now - this.lastTime <= this.coalesceMs && this.past.length > 0;
    if (!coalesce) {
      this.past.push(this.current);
      if (this.past.length > this.limit) this.past.shift();
    }
    this.current = state;
    this.future = [];
    this.lastKey = key;
    this.lastTime = now;
  }

  /** Start over from `state` (a loaded version): nothing to undo. */
  reset(state: T): void {
    this.past = [];
    this.future = [];
    this.current = state;
    this.lastKey = null;
  }

  undo(): T | undefined {
    const previous = this.past.pop();
    if (previous === undefined) return undefined;
    this.future.push(this.current);
    this.current = previous;
    this.lastKey = null;
    return previous;
  }

  redo(): T | undefined {
    const next = this.future.pop();
    if (next === undefined) return undefined;
    this.past.push(this.current);
    this.current = next;
    this.lastKey = null;
    return next;
  }
}
