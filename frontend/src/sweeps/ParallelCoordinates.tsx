// The sweep's trials as lines across one vertical axis per parameter and the objective last
// (SVG by hand: the geometry is sweepLogic's axesOf and trialLines). The best trial is drawn
// over the others, thicker; pruned and failed trials are faint; hovering a line names its trial.
import type { SweepDetail } from "../api/types";
import { axesOf, formatValue, trialLines } from "./sweepLogic";

const WIDTH = 720;
const HEIGHT = 260;
const MARGIN = { top: 28, right: 70, bottom: 28, left: 70 };

export function ParallelCoordinates({ sweep }: { sweep: SweepDetail }) {
  const axes = axesOf(sweep);
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const lines = trialLines(sweep, axes, plotWidth, plotHeight);
  const step = axes.length > 1 ? plotWidth / (axes.length - 1) : 0;
  return (
    <svg className="parallel-coordinates" viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" data-testid="parallel-coordinates"
      aria-label={`Parallel coordinates of ${sweep.trials.length} trials over ${axes.map((axis) => axis.name).join(", ")}`}>
      <g transform={`translate(${MARGIN.left},${MARGIN.top})`}>
        {lines.map((line) => (
          <polyline key={line.number} className={`trial-line ${line.state}${line.best ? " best" : ""}`} data-trial={line.number}
            points={line.points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" ")} fill="none">
            <title>{`trial ${line.number}${line.best ? " (best)" : ""}: ${line.state}`}</title>
          </polyline>
        ))}
        {axes.map((axis, index) => {
          const top = axis.kind === "category" ? axis.categories[axis.categories.length - 1] : formatValue(axis.max);
          const bottom = axis.kind === "category" ? axis.categories[0] : formatValue(axis.min);
          return (
            <g key={axis.name} transform={`translate(${index * step},0)`} className="axis">
              <line y1={0} y2={plotHeight} />
              <text className="axis-name" y={-12} textAnchor="middle">{axis.name.replace(/^node:/, "")}</text>
              {axis.kind === "category" && axis.categories.length > 2
                ? axis.categories.map((category, position) => (
                  <text key={category} className="tick" x={6} dy="0.32em"
                    y={(1 - position / (axis.categories.length - 1)) * plotHeight}>{category}</text>))
                : <>
                  <text className="tick" x={6} y={0} dy="0.32em">{top}</text>
                  <text className="tick" x={6} y={plotHeight} dy="0.32em">{bottom}</text>
                </>}
              {axis.kind === "log" && <text className="tick scale" y={plotHeight + 18} textAnchor="middle">log</text>}
            </g>
          );
        })}
      </g>
    </svg>
  );
}
