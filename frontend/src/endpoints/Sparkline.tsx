// A small SVG line of one series over the last hour (a point a minute); gaps where there is no value.
import { DOT_RADIUS, sparklineShape } from "./sparkline";

export function Sparkline({ values, label, unit = "", width = 240, height = 48 }: {
  values: (number | null)[];
  label: string;
  unit?: string;
  width?: number;
  height?: number;
}) {
  const { path, dots, largest } = sparklineShape(values, width, height);
  const present = values.filter((value): value is number => value !== null);
  const last = present.length ? present[present.length - 1] : null;
  const format = (value: number | null) => (value === null ? "—" : `${Number(value.toPrecision(3))}${unit}`);
  return (
    <figure className="sparkline" data-testid={`sparkline-${label}`}>
      <figcaption>
        {label}: <strong>{format(last)}</strong>
        <span className="muted"> (max {format(largest)})</span>
      </figcaption>
      <svg width={width} height={height} role="img" aria-label={`${label} over the last hour`}>
        <rect x={0} y={0} width={width} height={height} className="sparkline-frame" />
        <path d={path} className="sparkline-line" />
        {dots.map((dot) => <circle key={dot.x} cx={dot.x} cy={dot.y} r={DOT_RADIUS} className="sparkline-dot" />)}
      </svg>
    </figure>
  );
}
