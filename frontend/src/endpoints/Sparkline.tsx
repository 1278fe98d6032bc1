// A small SVG line of one series over the last hour (a point a minute); gaps where there is no value.

export function Sparkline({ values, label, unit = "", width = 240, height = 48 }: {
  values: (number | null)[];
  label: string;
  unit?: string;
  width?: number;
  height?: number;
}) {
  const present = values.filter((value): value is number => value !== null);
  const top = Math.max(1e-9, ...present);
  const step = values.length > 1 ? width / (values.length - 1) : width;
  let path = "";
  values.forEach((value, index) => {
    if (value === null) return;
    const x = index * step;
    const y = height - 2 - (value / top) * (height - 4);
    const previous = index > 0 ? values[index - 1] : null;
    path += `${previous === null ? "M" : "L"}${x.toFixed(1)},${y.toFixed(1)} `;
  });
  const last = present.length ? present[present.length - 1] : null;
  return (
    <figure className="sparkline" data-testid={`sparkline-${label}`}>
      <figcaption>
        {label}: <strong>{last === null ? "—" : `${Number(last.toPrecision(3))}${unit}`}</strong>
        <span className="muted"> (max {present.length ? `${Number(top.toPrecision(3))}${unit}` : "—"})</span>
      </figcaption>
      <svg width={width} height={height} role="img" aria-label={`${label} over the last hour`}>
        <rect x={0} y={0} width={width} height={height} className="sparkline-frame" />
        <path d={path} className="sparkline-line" />
      </svg>
    </figure>
  );
}
