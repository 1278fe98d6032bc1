// Comparing runs: their curves of each chosen metric overlaid (one chart per metric, one colour
// per run, every chart on the same x axis: step, epoch or time since each run's first point), and
// their configurations side by side with the rows that differ marked.
import type { Run, SeriesHistory } from "../api/types";
import { alignSeries, type XYSeries } from "../charts/align";
import { RUN_COLORS, type ChartFrame, type ChartLine, type ChartSource } from "../charts/chart";
import { smoothEma } from "../charts/smoothing";
import type { CurveOptions } from "./runCharts";
import { durationSeconds, flattenHyperparameters, numericFinalMetrics, runTitle } from "./runInfo";

export interface CompareCurve {
  run: Run;
  series: SeriesHistory | undefined;
}

/** The same controls as a run page's curves. */
export type CompareOptions = CurveOptions;

/** The metrics a comparison opens with: the validation loss, else the loss, else the first. */
export function defaultCompareMetrics(metrics: readonly string[]): string[] {
  const first = ["val_loss", "loss"].find((name) => metrics.includes(name)) ?? metrics[0];
  return first === undefined ? [] : [first];
}

/** The chosen metrics that the runs have, in the order of `metrics`; the default when none is left. */
export function shownCompareMetrics(chosen: readonly string[] | null, metrics: readonly string[]): string[] {
  const shown = metrics.filter((name) => chosen?.includes(name));
  return shown.length ? shown : defaultCompareMetrics(metrics);
}

/** `chosen` with `metric` ticked or unticked. */
export function toggleCompareMetric(chosen: readonly string[], metric: string): string[] {
  return chosen.includes(metric) ? chosen.filter((name) => name !== metric) : [...chosen, metric];
}

export function runColor(index: number): string {
  return RUN_COLORS[index % RUN_COLORS.length];
}

/** A chart source over fixed histories: the frame changes only with the curves or the options. */
export function compareSource(curves: readonly CompareCurve[], options: CompareOptions): ChartSource {
  return {
    subscribe: () => () => undefined,
    frame: () => compareFrame(curves, options),
  };
}

export function compareFrame(curves: readonly CompareCurve[], options: CompareOptions): ChartFrame {
  const inputs: XYSeries[] = [];
  const lines: ChartLine[] = [];
  let overlaid = 0;
  curves.forEach(({ run, series }, index) => {
    if (!series || !series.values.length) return;
    overlaid++;
    const x = options.xAxis === "step" ? series.steps : options.xAxis === "epoch" ? series.epochs : relative(series.wall_times);
    const raw = Float64Array.from(series.values, (value) => (value === null ? NaN : value));
    const color = runColor(index);
    const label = `${runTitle(run)} (#${run.id})`;
    if (options.smoothing > 0) {
      inputs.push({ x, y: raw });
      lines.push({ label: `${label} raw`, color, faint: true });
      inputs.push({ x, y: smoothEma(raw, options.smoothing) });
    } else {
      inputs.push({ x, y: raw });
    }
    lines.push({ label, color });
  });
  return { data: alignSeries(inputs, { positiveOnly: options.logScale }), lines, count: overlaid };
}

function relative(wallTimes: number[]): Float64Array {
  const origin = wallTimes[0] ?? 0;
  return Float64Array.from(wallTimes, (time) => time - origin);
}

export interface CompareRow {
  key: string;
  values: unknown[];
  differs: boolean;
}

/** Rows of the side-by-side table: what the run trained on, its hyperparameters, its results. */
export function compareRows(runs: readonly Run[]): { section: string; rows: CompareRow[] }[] {
  const describe = (run: Run): Record<string, unknown> => ({
    state: run.state,
    graph: `${run.graph_name} v${run.graph_version_number}`,
    dataset: run.dataset_name,
    device: run.device,
    workers: run.workers,
  });
  const results = (run: Run): Record<string, unknown> => {
    const duration = durationSeconds(run);
    return { ...Object.fromEntries(numericFinalMetrics(run)), duration_seconds: duration === null ? null : Math.round(duration * 10) / 10 };
  };
  return [
    { section: "Run", rows: rowsOf(runs, describe) },
    { section: "Hyperparameters", rows: rowsOf(runs, (run) => flattenHyperparameters(run.hyperparameters)) },
    { section: "Results", rows: rowsOf(runs, results) },
  ];
}

function rowsOf(runs: readonly Run[], pick: (run: Run) => Record<string, unknown>): CompareRow[] {
  const picked = runs.map(pick);
  const keys: string[] = [];
  for (const values of picked) for (const key of Object.keys(values)) if (!keys.includes(key)) keys.push(key);
  return keys.map((key) => {
    const values = picked.map((valuesOfRun) => valuesOfRun[key]);
    const first = JSON.stringify(values[0] ?? null);
    return { key, values, differs: values.some((value) => JSON.stringify(value ?? null) !== first) };
  });
}
