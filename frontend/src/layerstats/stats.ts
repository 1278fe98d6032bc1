// Per-layer statistics of a run (GET /api/runs/<id>/layer-stats and the `run.layer_stats`
// WebSocket message, see engine/layer_stats.py): merging live samples into the replayed ones,
// colouring nodes by a statistic, sparklines, the histogram heatmap, and the warnings a node gets.
// Plain TypeScript, apart from the React components that draw it.

export interface NodeStats {
  op?: string;
  block?: string;
  weight_norm?: number | null;
  grad_norm?: number | null;
  update_ratio?: number | null;
  mean?: number | null;
  std?: number | null;
  histogram?: number[];
  non_finite?: number;
  dead_fraction?: number;
  saturation?: number;
}

export interface NanSource {
  step: number;
  node: string | null;
  where: "output" | "gradient" | "input" | "loss";
  input?: string;
  block?: string;
}

export interface LayerSample {
  step: number;
  epoch: number;
  wall_time: number;
  nodes: Record<string, NodeStats>;
  nan?: NanSource | null;
}

export interface LayerStatsHistory {
  run: number;
  state: string;
  histogram_edges: number[];
  nodes: string[];
  nan: NanSource | null;
  total: number;
  samples: LayerSample[];
}

export interface NodeSample {
  step: number;
  epoch: number;
  wall_time: number;
  stats: NodeStats;
}

export const STATISTICS = [
  { key: "grad_norm", label: "gradient norm", scale: "log" },
  { key: "weight_norm", label: "weight norm", scale: "log" },
  { key: "update_ratio", label: "update / weight", scale: "log" },
  { key: "mean", label: "activation mean", scale: "linear" },
  { key: "std", label: "activation std", scale: "log" },
  { key: "dead_fraction", label: "dead units (ReLU)", scale: "fraction" },
  { key: "saturation", label: "saturation (tanh, sigmoid)", scale: "fraction" },
] as const;

export type StatisticKey = (typeof STATISTICS)[number]["key"];

// Thresholds of the warnings: rules of thumb (an update of about 1e-3 of the weights a step is
// healthy; far above it the weights explode, far below they do not move).
export const EXPLODING_GRADIENT_NORM = 1e3;
export const EXPLODING_UPDATE_RATIO = 0.5;
export const VANISHING_GRADIENT_NORM = 1e-7;
export const DEAD_LAYER_FRACTION = 0.9;
export const SATURATED_FRACTION = 0.9;
/** Samples a page keeps of a live run: the oldest go first (the record keeps them all, thinned). */
export const MAX_KEPT_SAMPLES = 500;

/** `incoming` merged into `samples` by step (a replayed sample and its live copy kept once), in step order. */
export function mergeSamples(samples: LayerSample[], incoming: LayerSample[], maxKept = MAX_KEPT_SAMPLES): LayerSample[] {
  if (!incoming.length) return samples;
  const byStep = new Map<number, LayerSample>();
  for (const sample of samples) byStep.set(sample.step, sample);
  for (const sample of incoming) byStep.set(sample.step, sample);
  const merged = [...byStep.values()].sort((a, b) => a.step - b.step);
  return merged.length > maxKept ? merged.slice(merged.length - maxKept) : merged;
}

/** The statistics of an editor node in a sample: its own, or for a block node those of the last
 * of its inner nodes (in forward order) that has them. */
export function statsOf(sample: LayerSample | undefined, nodeId: string): NodeStats | undefined {
  if (!sample) return undefined;
  const own = sample.nodes[nodeId];
  if (own) return own;
  let found: NodeStats | undefined;
  for (const stats of Object.values(sample.nodes)) if (stats.block === nodeId) found = stats;
  return found;
}

export function valueOf(stats: NodeStats | undefined, key: StatisticKey): number | null {
  const value = stats?.[key];
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

/** Each node's value of `key` in the latest sample that has one. */
export function latestValues(samples: LayerSample[], nodeIds: string[], key: StatisticKey): Map<string, number> {
  const values = new Map<string, number>();
  for (const id of nodeIds) {
    for (let i = samples.length - 1; i >= 0; i--) {
      const value = valueOf(statsOf(samples[i], id), key);
      if (value !== null) {
        values.set(id, value);
        break;
      }
    }
  }
  return values;
}

/** Positions in [0, 1] of the values on the statistic's scale (log for norms, the range of the
 * values otherwise; fractions on [0, 1] as they are), for the colour ramp. */
export function scaledPositions(values: Map<string, number>, key: StatisticKey): Map<string, number> {
  const scale = STATISTICS.find((statistic) => statistic.key === key)?.scale ?? "linear";
  const positions = new Map<string, number>();
  if (scale === "fraction") {
    for (const [id, value] of values) positions.set(id, Math.min(1, Math.max(0, value)));
    return positions;
  }
  const transform = (value: number) => (scale === "log" ? Math.log10(Math.max(value, 1e-12)) : value);
  const transformed = [...values].map(([id, value]) => [id, transform(value)] as const);
  const low = Math.min(...transformed.map(([, value]) => value));
  const high = Math.max(...transformed.map(([, value]) => value));
  for (const [id, value] of transformed) positions.set(id, high > low ? (value - low) / (high - low) : 0.5);
  return positions;
}

// A perceptual ramp (viridis' ends and middle): low is dark blue, high is yellow.
const RAMP = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];

export function rampColor(position: number): string {
  const t = Math.min(1, Math.max(0, position)) * (RAMP.length - 1);
  const index = Math.min(RAMP.length - 2, Math.floor(t));
  const fraction = t - index;
  const [a, b] = [RAMP[index], RAMP[index + 1]];
  const channel = (k: number) => Math.round(a[k] + (b[k] - a[k]) * fraction);
  return `rgb(${channel(0)}, ${channel(1)}, ${channel(2)})`;
}

/** A node's fill colour for each node with a value of `key`. */
export function nodeColors(samples: LayerSample[], nodeIds: string[], key: StatisticKey): Map<string, string> {
  const colors = new Map<string, string>();
  for (const [id, position] of scaledPositions(latestValues(samples, nodeIds, key), key)) colors.set(id, rampColor(position));
  return colors;
}

/** A node's values of `key` over the samples (null where a sample has none). */
export function seriesOf(samples: LayerSample[], nodeId: string, key: StatisticKey): (number | null)[] {
  return samples.map((sample) => valueOf(statsOf(sample, nodeId), key));
}

/** An SVG path of a sparkline of `values` in a `width` x `height` box (gaps where a value is null;
 * log scale for norms, so that a thousandfold change reads as a change). */
export function sparklinePath(values: (number | null)[], width: number, height: number, log = false): string {
  const points = values.map((value, index) => [index, value === null ? null : log ? Math.log10(Math.max(value, 1e-12)) : value] as const);
  const present = points.filter(([, value]) => value !== null).map(([, value]) => value as number);
  if (!present.length) return "";
  const low = Math.min(...present);
  const high = Math.max(...present);
  const x = (index: number) => (values.length > 1 ? (index / (values.length - 1)) * width : width / 2);
  const y = (value: number) => (high > low ? height - ((value - low) / (high - low)) * height : height / 2);
  let path = "";
  let drawing = false;
  for (const [index, value] of points) {
    if (value === null) {
      drawing = false;
      continue;
    }
    path += `${drawing ? "L" : "M"}${x(index).toFixed(1)},${y(value).toFixed(1)}`;
    drawing = true;
  }
  return path;
}

export type WarningKind = "nan" | "exploding" | "vanishing" | "dead" | "saturated";

export interface NodeWarning {
  kind: WarningKind;
  message: string;
}

/** The warnings of an editor node: the NaN source, and from its latest statistics exploding or
 * vanishing gradients, a dead ReLU layer, or saturation. */
export function nodeWarnings(samples: LayerSample[], nan: NanSource | null | undefined, nodeId: string): NodeWarning[] {
  const warnings: NodeWarning[] = [];
  if (nan && (nan.node === nodeId || nan.block === nodeId)) {
    const what = nan.where === "gradient" ? "its gradient" : "its output";
    warnings.push({ kind: "nan", message: `NaN source: ${what} became NaN or Inf first, at step ${nan.step}` });
  }
  const latest = (key: StatisticKey) => latestValues(samples, [nodeId], key).get(nodeId) ?? null;
  const gradient = latest("grad_norm");
  const ratio = latest("update_ratio");
  if ((gradient !== null && gradient >= EXPLODING_GRADIENT_NORM) || (ratio !== null && ratio >= EXPLODING_UPDATE_RATIO)) {
    warnings.push({ kind: "exploding", message: `exploding gradients: norm ${formatValue(gradient)}, update/weight ${formatValue(ratio)}` });
  } else if (gradient !== null && gradient < VANISHING_GRADIENT_NORM) {
    warnings.push({ kind: "vanishing", message: `vanishing gradients: norm ${formatValue(gradient)}` });
  }
  const dead = latest("dead_fraction");
  if (dead !== null && dead >= DEAD_LAYER_FRACTION) {
    warnings.push({ kind: "dead", message: `dead layer: ${Math.round(dead * 100)}% of its units are zero for a whole batch` });
  }
  const saturation = latest("saturation");
  if (saturation !== null && saturation >= SATURATED_FRACTION) {
    warnings.push({ kind: "saturated", message: `saturated: ${Math.round(saturation * 100)}% of its outputs at the bounds` });
  }
  return warnings;
}

/** The rows of a heatmap of a node's histograms over time: per sample, each bin's share of the
 * batch's values (0..1), so that batches of different sizes compare. */
export function heatmapRows(samples: NodeSample[]): { step: number; shares: number[] }[] {
  return samples
    .filter((sample) => Array.isArray(sample.stats.histogram))
    .map((sample) => {
      const counts = sample.stats.histogram as number[];
      const total = counts.reduce((sum, count) => sum + count, 0);
      return { step: sample.step, shares: counts.map((count) => (total ? count / total : 0)) };
    });
}

/** The label of each histogram bin, from the finite edges between them (open-ended at both sides). */
export function binLabels(edges: number[]): string[] {
  const labels = [`< ${edges[0]}`];
  for (let i = 0; i + 1 < edges.length; i++) labels.push(`${edges[i]} … ${edges[i + 1]}`);
  labels.push(`≥ ${edges[edges.length - 1]}`);
  return labels;
}

export function formatValue(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  if (value === 0) return "0";
  const magnitude = Math.abs(value);
  return magnitude >= 1e4 || magnitude < 1e-3 ? value.toExponential(2) : value.toPrecision(3);
}
