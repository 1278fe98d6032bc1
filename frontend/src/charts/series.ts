// Metric series kept in growable typed arrays, so that 100,000 live points cost appends, not
// copies of JS arrays, and a chart can hand uPlot views of them without rebuilding anything.
import type { MetricPoint, SeriesHistory } from "../api/types";

export type XAxisKind = "step" | "epoch" | "wall";

const INITIAL_CAPACITY = 256;

export class SeriesBuffer {
  length = 0;
  steps: Float64Array;
  epochs: Float64Array;
  wallTimes: Float64Array;
  values: Float64Array; // NaN where the server sent null (a non-finite value)
  sequences: Float64Array;
  hasGaps = false;
  /** False once a point arrived with a smaller step than the one before (then a chart sorts). */
  ordered = true;

  constructor(capacity = INITIAL_CAPACITY) {
    this.steps = new Float64Array(capacity);
    this.epochs = new Float64Array(capacity);
    this.wallTimes = new Float64Array(capacity);
    this.values = new Float64Array(capacity);
    this.sequences = new Float64Array(capacity);
  }

  append(step: number, epoch: number, value: number | null, wallTime: number, sequence: number): void {
    if (this.length === this.steps.length) this.grow();
    const i = this.length;
    if (i > 0 && step < this.steps[i - 1]) this.ordered = false;
    this.steps[i] = step;
    this.epochs[i] = epoch;
    this.wallTimes[i] = wallTime;
    const finite = value !== null && Number.isFinite(value);
    this.values[i] = finite ? value : NaN;
    if (!finite) this.hasGaps = true;
    this.sequences[i] = sequence;
    this.length = i + 1;
  }

  /** The x coordinates for one axis kind (`wall`: seconds since `wallOrigin`). */
  x(kind: XAxisKind, wallOrigin = 0): Float64Array {
    if (kind === "step") return this.steps.subarray(0, this.length);
    if (kind === "epoch") return this.epochs.subarray(0, this.length);
    const relative = new Float64Array(this.length);
    for (let i = 0; i < this.length; i++) relative[i] = this.wallTimes[i] - wallOrigin;
    return relative;
  }

  y(): Float64Array {
    return this.values.subarray(0, this.length);
  }

  last(): { step: number; epoch: number; value: number; wallTime: number } | null {
    if (!this.length) return null;
    const i = this.length - 1;
    return { step: this.steps[i], epoch: this.epochs[i], value: this.values[i], wallTime: this.wallTimes[i] };
  }

  private grow(): void {
    const capacity = this.steps.length * 2;
    for (const key of ["steps", "epochs", "wallTimes", "values", "sequences"] as const) {
      const bigger = new Float64Array(capacity);
      bigger.set(this[key]);
      this[key] = bigger;
    }
  }
}

/**
 * Every series of one run. Listeners hear about changes once per batch of points (a WebSocket
 * message), never per point; charts coalesce further to one redraw per animation frame.
 */
export class SeriesStore {
  readonly series = new Map<string, SeriesBuffer>();
  /** Bumped on every change; a chart redraws only when it differs from what it drew. */
  version = 0;
  /** The earliest wall time seen, the origin of the "relative time" axis. */
  wallOrigin = Infinity;
  private listeners = new Set<() => void>();

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  names(): string[] {
    return [...this.series.keys()];
  }

  get(name: string): SeriesBuffer | undefined {
    return this.series.get(name);
  }

  /** Replace everything with a history (the WebSocket's first `run.history`, or a REST read). */
  loadHistory(history: Record<string, SeriesHistory>): void {
    this.series.clear();
    this.wallOrigin = Infinity;
    for (const [name, columns] of Object.entries(history)) {
      const buffer = new SeriesBuffer(Math.max(INITIAL_CAPACITY, columns.values.length * 2));
      for (let i = 0; i < columns.values.length; i++) {
        buffer.append(columns.steps[i], columns.epochs[i], columns.values[i], columns.wall_times[i], columns.sequences[i]);
      }
      if (columns.wall_times.length) this.wallOrigin = Math.min(this.wallOrigin, columns.wall_times[0]);
      this.series.set(name, buffer);
    }
    this.changed();
  }

  appendPoints(points: readonly MetricPoint[]): void {
    if (!points.length) return;
    for (const point of points) {
      let buffer = this.series.get(point.name);
      if (!buffer) {
        buffer = new SeriesBuffer();
        this.series.set(point.name, buffer);
      }
      buffer.append(point.step, point.epoch, point.value, point.wall_time, point.seq);
      if (point.wall_time < this.wallOrigin) this.wallOrigin = point.wall_time;
    }
    this.changed();
  }

  private changed(): void {
    this.version++;
    for (const listener of this.listeners) listener();
  }
}
