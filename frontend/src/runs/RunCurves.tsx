// A run's live curves: one chart per metric (training and validation together), fed straight from
// the series store.
import { useEffect, useMemo, useState } from "react";
import { chartTitle, groupSeries } from "../charts/metrics";
import type { SeriesStore } from "../charts/series";
import { UPlotChart } from "../charts/UPlotChart";
import { CurveControls } from "./CurveControls";
import { MetricChartSource, X_AXIS_LABELS, type CurveOptions } from "./runCharts";

export function Curves({ store, runId }: { store: SeriesStore; runId: number }) {
  const [options, setOptions] = useState<CurveOptions>({ xAxis: "step", smoothing: 0.6, logScale: false });
  const [metrics, setMetrics] = useState<string[]>([]);
  const sources = useMemo(() => new Map<string, MetricChartSource>(), [store]);

  // Only a new series name re-renders the page (a new chart); points go straight to the charts.
  useEffect(() => {
    const update = () => {
      const next = groupSeries(store.names()).map((group) => group.metric);
      setMetrics((current) => (current.join() === next.join() ? current : next));
    };
    update();
    return store.subscribe(update);
  }, [store]);

  useEffect(() => {
    for (const source of sources.values()) source.setOptions(options);
  }, [options, sources]);

  const sourceFor = (metric: string) => {
    let source = sources.get(metric);
    if (!source) sources.set(metric, (source = new MetricChartSource(store, metric, options)));
    return source;
  };
  const shown = metrics.includes("loss") ? metrics : ["loss", ...metrics];

  return (
    <section className="curves">
      <div className="curve-controls">
        <CurveControls options={options} onChange={setOptions}>
          <span className="muted hint">Drag to zoom, double-click to reset.</span>
        </CurveControls>
      </div>
      <div className="chart-grid">
        {shown.map((metric) => (
          <UPlotChart
            key={metric}
            source={sourceFor(metric)}
            title={chartTitle(metric)}
            testId={`chart-${metric}`}
            xLabel={X_AXIS_LABELS[options.xAxis]}
            xFormat={options.xAxis === "wall" ? "duration" : "number"}
            logScale={options.logScale}
            syncKey={`run-${runId}`}
            emptyText={metric === "loss" ? "Waiting for the first points…" : "No points yet"}
          />
        ))}
      </div>
    </section>
  );
}
