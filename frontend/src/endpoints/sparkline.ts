// The geometry of a sparkline, apart from its drawing: an SVG path through the values (a gap where
// a value is null), a dot for a value with no neighbour to join (a lone minute of traffic would
// otherwise draw nothing), and the largest value for the caption.

export interface SparklineShape {
  path: string;
  dots: { x: number; y: number }[];
  /** The largest value present, or null when there is none. */
  largest: number | null;
}

export const DOT_RADIUS = 2.5;

export function sparklineShape(values: readonly (number | null)[], width: number, height: number): SparklineShape {
  const present = values.filter((value): value is number => value !== null);
  const largest = present.length ? Math.max(...present) : null;
  const top = Math.max(1e-9, largest ?? 0); // all zeros: a line along the bottom, not a division by zero
  const step = values.length > 1 ? width / (values.length - 1) : width;
  let path = "";
  const dots: { x: number; y: number }[] = [];
  values.forEach((value, index) => {
    if (value === null) return;
    const x = index * step;
    const y = height - 2 - (value / top) * (height - 4);
    const previous = index > 0 ? values[index - 1] : null;
    const next = index + 1 < values.length ? values[index + 1] : null;
    path += `${previous === null ? "M" : "L"}${x.toFixed(1)},${y.toFixed(1)} `;
    if (previous === null && next === null) {
      dots.push({ x: clamp(x, DOT_RADIUS, width - DOT_RADIUS), y: clamp(y, DOT_RADIUS, height - DOT_RADIUS) });
    }
  });
  return { path: path.trim(), dots, largest };
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(Math.max(value, low), high);
}
