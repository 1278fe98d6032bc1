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
