// A node's activation histograms over time: one column per sample (step), one row per fixed bin,
// darker where more of the batch's values fall.
import { binLabels, formatValue, heatmapRows, type NodeSample } from "./stats";

const CELL_HEIGHT = 12;
const LABEL_WIDTH = 92;
const WIDTH = 560;

export function Heatmap({ samples, edges }: { samples: NodeSample[]; edges: number[] }) {
  const rows = heatmapRows(samples);
  if (!rows.length) return <p className="muted">No activation histograms of this node (it is not a watched activation).</p>;
  const bins = rows[0].shares.length;
  const labels = binLabels(edges);
  const cellWidth = (WIDTH - LABEL_WIDTH) / rows.length;
  const height = bins * CELL_HEIGHT;
  return (
    <svg className="ls-heatmap" width={WIDTH} height={height + 18} data-testid="layer-heatmap" role="img"
      aria-label={`histograms of ${rows.length} samples, steps ${rows[0].step} to ${rows[rows.length - 1].step}`}>
      {labels.map((label, bin) => (
        <text key={label} x={LABEL_WIDTH - 4} y={height - bin * CELL_HEIGHT - 3} textAnchor="end" className="ls-heatmap-label">{label}</text>
      ))}
      {rows.map((row, column) => row.shares.map((share, bin) => (
        <rect key={`${column}-${bin}`} x={LABEL_WIDTH + column * cellWidth} y={height - (bin + 1) * CELL_HEIGHT}
          width={Math.max(cellWidth, 1)} height={CELL_HEIGHT} fill={`rgba(37, 99, 235, ${Math.sqrt(share).toFixed(3)})`}>
          <title>{`step ${row.step}, ${labels[bin]}: ${formatValue(share * 100)}%`}</title>
        </rect>
      )))}
      <text x={LABEL_WIDTH} y={height + 14} className="ls-heatmap-label">step {rows[0].step}</text>
      <text x={WIDTH} y={height + 14} textAnchor="end" className="ls-heatmap-label">step {rows[rows.length - 1].step}</text>
    </svg>
  );
}
