// Which series share a chart: a metric and its validation twin (`accuracy` with `val_accuracy`),
// and for the loss also the per-epoch mean the worker records as `epoch_loss`. The training
// process's CPU, memory and GPU (`system/...`, workers/system_metrics.py) come after the model's
// metrics, one chart each.

export type SeriesRole = "train" | "train-epoch" | "validation";

export interface MetricGroup {
  /** The chart's name: the training metric's name (`loss`, `accuracy`, ...). */
  metric: string;
  members: { name: string; role: SeriesRole }[];
}

const VALIDATION_PREFIX = "val_";
const EPOCH_PREFIX = "epoch_";
// Shown in the progress line rather than as a curve beside the model's metrics.
const LAST_GROUPS = new Set(["samples_per_second", "lr"]);
export const SYSTEM_PREFIX = "system/";

/** What the worker measures of the training process, by series name, as a chart title says it. */
const SYSTEM_TITLES: Record<string, string> = {
  "system/cpu_percent": "CPU (% of one core)",
  "system/rss_mb": "memory (MiB resident)",
  "system/memory_percent": "memory (% of the machine)",
  "system/gpu_percent": "GPU utilisation (%)",
  "system/gpu_memory_mb": "GPU memory (MiB)",
};

export const isSystemSeries = (name: string) => name.startsWith(SYSTEM_PREFIX);

/** A chart's title: the metric's name, or what a system series measures. */
export function chartTitle(metric: string): string {
  return SYSTEM_TITLES[metric] ?? (isSystemSeries(metric) ? metric.slice(SYSTEM_PREFIX.length) : metric);
}

export function metricOfSeries(name: string): { metric: string; role: SeriesRole } {
  if (isSystemSeries(name)) return { metric: name, role: "train" };
  if (name.startsWith(VALIDATION_PREFIX)) return { metric: name.slice(VALIDATION_PREFIX.length), role: "validation" };
  if (name.startsWith(EPOCH_PREFIX)) return { metric: name.slice(EPOCH_PREFIX.length), role: "train-epoch" };
  return { metric: name, role: "train" };
}

const ROLE_ORDER: Record<SeriesRole, number> = { train: 0, "train-epoch": 1, validation: 2 };

/** Groups for a run's series names: loss first, then the metrics by name, throughput, then the
 * system series (CPU, memory, GPU). */
export function groupSeries(names: readonly string[]): MetricGroup[] {
  const groups = new Map<string, MetricGroup>();
  for (const name of names) {
    const { metric, role } = metricOfSeries(name);
    let group = groups.get(metric);
    if (!group) groups.set(metric, (group = { metric, members: [] }));
    group.members.push({ name, role });
  }
  for (const group of groups.values()) group.members.sort((a, b) => ROLE_ORDER[a.role] - ROLE_ORDER[b.role]);
  const rank = (metric: string) => (metric === "loss" ? 0 : isSystemSeries(metric) ? 3 : LAST_GROUPS.has(metric) ? 2 : 1);
  return [...groups.values()].sort((a, b) => rank(a.metric) - rank(b.metric) || a.metric.localeCompare(b.metric));
}

/** Whether a larger value is better (for early stopping's mode and for highlighting the best run). */
export function higherIsBetter(metric: string): boolean {
  const base = metricOfSeries(metric).metric;
  return /accuracy|auc|precision|recall|f1|r2/.test(base);
}
