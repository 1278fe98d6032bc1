// Runs side by side: for each metric ticked, every run's curve on one chart (the charts share the x
// axis, step, epoch or time, and a cursor), and their configurations and results in a table that
// marks the rows where they differ.
import { useEffect, useMemo, useState } from "react";
import { Link } from "react-router-dom";
import { errorMessage } from "../api/client";
import type { Run, SeriesHistory } from "../api/types";
import { chartTitle } from "../charts/metrics";
import { UPlotChart } from "../charts/UPlotChart";
import { fetchRunSeries } from "./api";
import { compareRows, compareSource, runColor, shownCompareMetrics, toggleCompareMetric, type CompareOptions } from "./compare";
import { CurveControls } from "./CurveControls";
import { formatCell, formatPlain } from "./formatting";
import { X_AXIS_LABELS } from "./runCharts";
import { runTitle } from "./runInfo";
import { metricOrder } from "./runTable";

// Points per series fetched for a comparison (the server keeps each window's minimum and maximum).
const COMPARE_MAX_POINTS = 2000;

export function ComparePanel({ runs, onClose }: { runs: Run[]; onClose(): void }) {
  const [histories, setHistories] = useState<Map<number, Record<string, SeriesHistory>>>(new Map());
  const [failures, setFailures] = useState<string[]>([]);
  const [chosenMetrics, setChosenMetrics] = useState<string[] | null>(null); // null: the default
  const [options, setOptions] = useState<CompareOptions>({ xAxis: "step", smoothing: 0, logScale: false });
  const [reloads, setReloads] = useState(0);
  const runKey = runs.map((run) => run.id).join(",");

  useEffect(() => {
    let cancelled = false;
    Promise.all(runs.map((run) =>
      fetchRunSeries(run.id, COMPARE_MAX_POINTS)
        .then((series) => [run.id, series] as const)
        .catch((error) => [run.id, new Error(`${runTitle(run)}: ${errorMessage(error)}`)] as const),
    )).then((results) => {
      if (cancelled) return;
      const loaded = new Map<number, Record<string, SeriesHistory>>();
      const errors: string[] = [];
      for (const [id, result] of results) {
        if (result instanceof Error) errors.push(result.message);
        else loaded.set(id, result);
      }
      setHistories(loaded);
      setFailures(errors);
    });
    return () => {
      cancelled = true;
    };
  }, [runKey, reloads]);

  const metrics = useMemo(() => {
    const names = new Set<string>();
    for (const series of histories.values()) for (const name of Object.keys(series)) names.add(name);
    return [...names].sort(metricOrder);
  }, [histories]);
  const shown = useMemo(() => shownCompareMetrics(chosenMetrics, metrics), [chosenMetrics, metrics]);
  const sources = useMemo(
    () => shown.map((metric) => ({
      metric,
      source: compareSource(runs.map((run) => ({ run, series: histories.get(run.id)?.[metric] })), options),
    })),
    [runs, histories, shown, options],
  );
  const sections = compareRows(runs);

  return (
    <section className="card compare" aria-label="Comparison">
      <div className="row">
        <h2>Compare {runs.length} run{runs.length === 1 ? "" : "s"}</h2>
        <div className="spacer" />
        <button onClick={() => setReloads(reloads + 1)}>Reload curves</button>
        <button onClick={onClose}>Close</button>
      </div>
      {failures.map((failure) => <div key={failure} className="error-box" role="alert">{failure}</div>)}
      <div className="curve-controls">
        <CurveControls options={options} onChange={setOptions} />
      </div>
      <fieldset className="compare-metrics" aria-label="Metrics">
        <legend>Metrics</legend>
        {!metrics.length && <span className="muted">{histories.size ? "No recorded metrics" : "Loading…"}</span>}
        {metrics.map((name) => (
          <label key={name} className="inline">
            <input type="checkbox" checked={shown.includes(name)} data-testid={`compare-metric-toggle-${name}`}
              onChange={() => setChosenMetrics(toggleCompareMetric(shown, name))} />
            {name}
          </label>
        ))}
      </fieldset>
      <div className={shown.length > 1 ? "compare-charts several" : "compare-charts"}>
        {(sources.length ? sources : [{ metric: "", source: compareSource([], options) }]).map(({ metric, source }) => (
          <div key={metric} data-testid={`compare-metric-${metric}`}>
            <UPlotChart
              source={source}
              title={chartTitle(metric)}
              testId="compare-chart"
              countAttribute="data-series"
              xLabel={X_AXIS_LABELS[options.xAxis]}
              xFormat={options.xAxis === "wall" ? "duration" : "number"}
              logScale={options.logScale}
              height={shown.length > 1 ? 260 : 320}
              syncKey={`compare-${runKey}`}
              emptyText={histories.size ? "None of these runs has points of this metric" : "Loading curves…"}
            />
          </div>
        ))}
      </div>
      <div className="table-scroll">
        <table className="data compare-table" data-testid="compare-table">
          <thead>
            <tr>
              <th />
              {runs.map((run, index) => (
                <th key={run.id}><span className="swatch" style={{ background: runColor(index) }} /><Link to={`/runs/${run.id}`}>{runTitle(run)}</Link></th>
              ))}
            </tr>
          </thead>
          {sections.map((section) => (
            <tbody key={section.section}>
              <tr><th colSpan={runs.length + 1} className="section">{section.section}</th></tr>
              {section.rows.map((row) => (
                <tr key={row.key} className={row.differs ? "differs" : undefined} data-differs={row.differs || undefined}>
                  <th className="mono">{row.key}</th>
                  {row.values.map((value, index) => (
                    <td key={index} className="mono">{section.section === "Results" ? formatCell(value) : formatPlain(value)}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          ))}
        </table>
      </div>
    </section>
  );
}
