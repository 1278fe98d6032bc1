// The controls every curve view shares: EMA smoothing, log scale and what the x axis counts.
import type { ReactNode } from "react";
import type { XAxisKind } from "../charts/series";
import type { CurveOptions } from "./runCharts";

export function CurveControls({ options, onChange, children }: {
  options: CurveOptions;
  onChange(options: CurveOptions): void;
  children?: ReactNode;
}) {
  return (
    <>
      <label className="inline">
        Smoothing
        <input
          type="range" min={0} max={0.99} step={0.01} value={options.smoothing}
          onChange={(event) => onChange({ ...options, smoothing: Number(event.target.value) })}
          aria-label="Smoothing"
        />
        <span className="mono">{options.smoothing.toFixed(2)}</span>
      </label>
      <label className="inline">
        <input type="checkbox" checked={options.logScale} onChange={(event) => onChange({ ...options, logScale: event.target.checked })} />
        Log scale
      </label>
      <label className="inline">
        X axis
        <select value={options.xAxis} onChange={(event) => onChange({ ...options, xAxis: event.target.value as XAxisKind })}>
          <option value="step">Step</option>
          <option value="epoch">Epoch</option>
          <option value="wall">Relative time</option>
        </select>
      </label>
      {children}
    </>
  );
}
