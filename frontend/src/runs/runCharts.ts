// The chart sources of a run page: one per metric, drawing the training series, its per-epoch
// mean and its validation twin from the run's SeriesStore, with the page's smoothing and x axis.
import { alignSeries, type XYSeries } from "../charts/align";
import { EPOCH_COLOR, TRAIN_COLOR, VALIDATION_COLOR, type ChartFrame, type ChartLine, type ChartSource } from "../charts/chart";
import { metricOfSeries, type SeriesRole } from "../charts/metrics";
import type { SeriesStore, XAxisKind } from "../charts/series";
import { smoothEma } from "../charts/smoothing";

export interface CurveOptions {
  xAxis: XAxisKind;
  /** EMA weight in [0, 1). */
  smoothing: number;
  logScale: boolean;
}

const ROLE_ORDER: Record<SeriesRole, number> = { train: 0, "train-epoch": 1, validation: 2 };
const ROLE_STYLE: Record<SeriesRole, { color: string; dash?: number[] }> = {
  train: { color: TRAIN_COLOR },
  "train-epoch": { color: EPOCH_COLOR, dash: [6, 3] },
  validation: { color: VALIDATION_COLOR },
};

export class MetricChartSource implements ChartSource {
  private listeners = new Set<() => void>();
  private unsubscribeStore: (() => void) | null = null;

  constructor(
    private readonly store: SeriesStore,
    readonly metric: string,
    private options: CurveOptions,
  ) {}

  setOptions(options: CurveOptions): void {
    this.options = options;
    for (const listener of this.listeners) listener();
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    if (!this.unsubscribeStore) {
      this.unsubscribeStore = this.store.subscribe(() => {
        for (const notify of this.listeners) notify();
      });
    }
    return () => {
      this.listeners.delete(listener);
      if (!this.listeners.size && this.unsubscribeStore) {
        this.unsubscribeStore();
        this.unsubscribeStore = null;
      }
    };
  }

  frame(): ChartFrame {
    const { xAxis, smoothing, logScale } = this.options;
    const members = this.store
      .names()
      .map((name) => ({ name, ...metricOfSeries(name) }))
      .filter((member) => member.metric === this.metric)
      .sort((a, b) => ROLE_ORDER[a.role] - ROLE_ORDER[b.role]);
    const inputs: XYSeries[] = [];
    const lines: ChartLine[] = [];
    for (const member of members) {
      const buffer = this.store.get(member.name)!;
      const x = buffer.x(xAxis, this.store.wallOrigin);
      const raw = buffer.y();
      const style = ROLE_STYLE[member.role];
      if (smoothing > 0) {
        inputs.push({ x, y: raw });
        lines.push({ label: `${member.name} (raw)`, color: style.color, faint: true });
        inputs.push({ x, y: smoothEma(raw, smoothing) });
      } else {
        inputs.push({ x, y: raw });
      }
      lines.push({ label: member.name, color: style.color, dash: style.dash });
    }
    return {
      data: alignSeries(inputs, { positiveOnly: logScale }),
      lines,
      count: this.store.get(this.metric)?.length ?? members.reduce((sum, m) => sum + (this.store.get(m.name)?.length ?? 0), 0),
    };
  }
}

export const X_AXIS_LABELS: Record<XAxisKind, string> = { step: "step", epoch: "epoch", wall: "time" };
