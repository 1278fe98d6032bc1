// What a chart draws, apart from how: a source gives frames (aligned data and one line per series)
// and says when it has a new one. The uPlot component pulls at most one frame per animation frame.
import type uPlot from "uplot";

export interface ChartLine {
  label: string;
  color: string;
  width?: number;
  dash?: number[];
  /** The raw curve drawn under its smoothed one: thin and translucent, left out of the legend values. */
  faint?: boolean;
}

export interface ChartFrame {
  data: uPlot.AlignedData;
  lines: ChartLine[];
  /** What the chart reports in its count attribute (points of the main series, or runs overlaid). */
  count: number;
}

export interface ChartSource {
  subscribe(listener: () => void): () => void;
  frame(): ChartFrame;
}

export const TRAIN_COLOR = "#2563eb";
export const EPOCH_COLOR = "#0d9488";
export const VALIDATION_COLOR = "#ea580c";
// One colour per run when runs are overlaid (Tableau 10, the palette TensorBoard and W&B users know).
export const RUN_COLORS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];

/** Seconds as a short duration for a relative-time axis: 45s, 3m 20s, 1h 05m. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "";
  const sign = seconds < 0 ? "-" : "";
  let rest = Math.abs(seconds);
  if (rest < 60) return `${sign}${rest < 10 ? rest.toFixed(1).replace(/\.0$/, "") : Math.round(rest)}s`;
  const hours = Math.floor(rest / 3600);
  rest -= hours * 3600;
  const minutes = Math.floor(rest / 60);
  const secs = Math.round(rest - minutes * 60);
  if (hours) return `${sign}${hours}h ${String(minutes).padStart(2, "0")}m`;
  return `${sign}${minutes}m ${String(secs).padStart(2, "0")}s`;
}

/** A metric value for a table cell: integers whole, others with four significant decimals. */
export function formatValue(value: unknown): string {
  if (typeof value !== "number") return value === null || value === undefined ? "" : String(value);
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value)) return String(value);
  const magnitude = Math.abs(value);
  if (magnitude >= 1e-3 && magnitude < 1e6) return value.toFixed(4);
  return value.toPrecision(4);
}

/**
 * A y-axis tick: short enough for the axis (100k, 1.5M, 2e-4) and never "0" for a positive value
 * (a log scale's small powers of ten rounded to fixed decimals read as 0).
 */
export function formatTick(value: number): string {
  if (!Number.isFinite(value)) return "";
  if (value === 0) return "0";
  const magnitude = Math.abs(value);
  // Precision enough that neighbouring ticks of a zoomed axis stay distinct (100.5k, 101k).
  if (magnitude >= 1e9) return `${+(value / 1e9).toPrecision(4)}G`;
  if (magnitude >= 1e6) return `${+(value / 1e6).toPrecision(4)}M`;
  if (magnitude >= 1e4) return `${+(value / 1e3).toPrecision(4)}k`;
  if (magnitude < 1e-3) return (+value.toPrecision(3)).toExponential();
  return String(+value.toPrecision(6));
}

const TICK_CHAR_PX = 7.5; // the widest digit of uPlot's 12px axis font, with room to spare
const AXIS_PADDING_PX = 18; // the tick marks and the gap between them and the labels

/** The y axis's width for these tick labels, so none is clipped at the chart's left edge. */
export function yAxisSize(ticks: readonly string[] | null | undefined): number {
  const longest = Math.max(0, ...(ticks ?? []).map((tick) => tick.length));
  return Math.max(40, Math.ceil(AXIS_PADDING_PX + longest * TICK_CHAR_PX));
}
