// One run: its state, progress, live curves over the WebSocket, final metrics, evaluation, and its
// editable name, tags and notes.
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { Link, useParams } from "react-router-dom";
import { api, errorMessage } from "../api/client";
import type { Run, RunMessage } from "../api/types";
import { formatDuration, formatValue } from "../charts/chart";
import { groupSeries } from "../charts/metrics";
import { SeriesStore } from "../charts/series";
import { UPlotChart } from "../charts/UPlotChart";
import { PublishButton } from "../endpoints/PublishButton";
import { CurveControls } from "./CurveControls";
import { EvaluationSection } from "./EvaluationSection";
import { LiveRunClient, type ConnectionStatus } from "./live";
import { formatBytes, isWorkerStatus, mergeWorkerStatus, workerLabel, type WorkerStatus } from "./workerStatus";
import { estimateProgress, type ProgressEstimate } from "./progress";
import { MetricChartSource, X_AXIS_LABELS, type CurveOptions } from "./runCharts";
import { RunAnnotations } from "./RunAnnotations";
import { durationSeconds, flattenHyperparameters, formatDateTime, isFinished, runTitle } from "./runInfo";
import "./runs.css";

export function RunPage() {
  const runId = Number(useParams().runId);
  const [run, setRun] = useState<Run | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [connection, setConnection] = useState<{ status: ConnectionStatus; detail?: string }>({ status: "connecting" });
  const [actionError, setActionError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [workers, setWorkers] = useState<WorkerStatus[]>([]);
  const store = useMemo(() => new SeriesStore(), [runId]);
  const clientRef = useRef<LiveRunClient | null>(null);

  const reload = useCallback(async () => {
    try {
      setRun(await api<Run>(`/api/runs/${runId}`));
      setLoadError(null);
    } catch (error) {
      setLoadError(errorMessage(error));
    }
  }, [runId]);

  useEffect(() => {
    setRun(null);
    void reload();
  }, [reload]);

  useEffect(() => {
    if (!Number.isFinite(runId)) return;
    const client = new LiveRunClient({
      runId,
      handlers: {
        history: (series) => store.loadHistory(series),
        points: (points) => store.appendPoints(points),
        state: (message) => {
          const update = message as Extract<RunMessage, { type: "run.state" }>;
          setRun((current) => current && {
            ...current,
            state: update.state,
            epochs_completed: update.epochs_completed ?? current.epochs_completed,
            error: update.error ?? (update.state === "failed" ? current.error : ""),
            final_metrics: update.final_metrics ?? current.final_metrics,
          });
          // State changes are rare; the record has what the message leaves out (times, steps).
          void reload();
        },
        status: (status, detail) => setConnection({ status, detail }),
        worker: (message) => {
          if (isWorkerStatus(message)) setWorkers((rows) => mergeWorkerStatus(rows, message));
        },
      },
    });
    clientRef.current = client;
    client.start();
    return () => {
      client.stop();
      clientRef.current = null;
    };
  }, [runId, store, reload]);

  async function act(action: "cancel" | "resume") {
    setBusy(true);
    setActionError(null);
    try {
      setRun(await api<Run>(`/api/runs/${runId}/${action}`, { method: "POST" }));
      if (action === "resume") clientRef.current?.reconnectNow();
    } catch (error) {
      setActionError(errorMessage(error));
    } finally {
      setBusy(false);
    }
  }

  if (loadError && !run) return <div className="card error-box" role="alert">Could not load run {runId}: {loadError}</div>;
  if (!run) return <div className="loading">Loading run…</div>;

  const active = run.state === "queued" || run.state === "running";
  return (
    <div className="run-page">
      <nav className="crumbs">
        <Link to={`/projects/${run.project}`}>Editor</Link>
        <span>/</span>
        <Link to={`/projects/${run.project}/runs`}>Runs</Link>
        <span>/</span>
        <span>{runTitle(run)}</span>
      </nav>
      <header className="run-header">
        <h1>{runTitle(run)}</h1>
        <span className={`badge ${run.state}`} data-testid="run-state">{run.state}</span>
        {run.cancel_requested && active && <span className="muted">cancelling…</span>}
        <LiveIndicator status={connection.status} detail={connection.detail} finished={isFinished(run.state)} />
        <div className="spacer" />
        {active && (
          <button className="danger" onClick={() => void act("cancel")} disabled={busy || run.cancel_requested}>Cancel</button>
        )}
        {(run.state === "failed" || run.state === "cancelled") && (
          <button onClick={() => void act("resume")} disabled={busy} title="Continue from the newest checkpoint">Resume</button>
        )}
        {run.state === "succeeded" && <PublishButton runId={run.id} />}
      </header>
      {actionError && <div className="error-box" role="alert">{actionError}</div>}
      {run.state === "failed" && run.error && (
        <div className="error-box run-error" role="alert"><strong>Training failed:</strong> <pre>{run.error}</pre></div>
      )}
      <ProgressBar store={store} run={run} />
      {run.workers > 1 && <WorkersTable run={run} workers={workers} />}
      <Curves store={store} runId={runId} />
      {Object.keys(run.final_metrics ?? {}).length > 0 && <FinalMetrics run={run} />}
      {run.state === "succeeded" && <EvaluationSection runId={runId} />}
      <div className="run-columns">
        <RunAnnotations run={run} onSaved={setRun} />
        <RunFacts run={run} />
      </div>
    </div>
  );
}

function LiveIndicator({ status, detail, finished }: { status: ConnectionStatus; detail?: string; finished: boolean }) {
  if (status === "live") return <span className="live-dot" title="Receiving points as they are recorded">{finished ? "" : "live"}</span>;
  if (status === "closed" && !detail) return null;
  const text = status === "connecting" ? "connecting…" : status === "reconnecting" ? "reconnecting…" : "disconnected";
  return <span className="muted connection" title={detail}>{text}{detail && status === "closed" ? `: ${detail}` : ""}</span>;
}

// Re-rendered a few times a second at most, whatever the rate of points.
const PROGRESS_INTERVAL_MS = 250;

function ProgressBar({ store, run }: { store: SeriesStore; run: Run }) {
  const [estimate, setEstimate] = useState<ProgressEstimate>(() => estimateProgress(store, run));
  const runRef = useRef(run);
  runRef.current = run;

  useEffect(() => {
    setEstimate(estimateProgress(store, runRef.current));
  }, [store, run]);

  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | null = null;
    const unsubscribe = store.subscribe(() => {
      if (timer) return;
      timer = setTimeout(() => {
        timer = null;
        setEstimate(estimateProgress(store, runRef.current));
      }, PROGRESS_INTERVAL_MS);
    });
    return () => {
      unsubscribe();
      if (timer) clearTimeout(timer);
    };
  }, [store]);

  const percent = estimate.fraction === null ? null : Math.round(estimate.fraction * 1000) / 10;
  const parts = [
    `epoch ${formatEpoch(estimate.epoch)}${estimate.totalEpochs ? ` / ${estimate.totalEpochs}` : ""}`,
    `step ${estimate.step.toLocaleString()}${estimate.totalSteps ? ` / ${estimate.totalSteps.toLocaleString()}` : ""}`,
  ];
  if (estimate.samplesPerSecond) parts.push(`${Math.round(estimate.samplesPerSecond).toLocaleString()} samples/s`);
  if (estimate.etaSeconds !== null) parts.push(`ETA ${formatDuration(estimate.etaSeconds)}`);
  const elapsed = durationSeconds(run);
  if (elapsed !== null && !estimate.etaSeconds) parts.push(`took ${formatDuration(elapsed)}`);
  return (
    <div className="progress card" data-testid="progress" data-fraction={estimate.fraction ?? ""}>
      <div
        className={`progress-track ${run.state}`}
        role="progressbar"
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={percent ?? undefined}
        aria-label="Training progress"
      >
        <div className="progress-fill" style={{ width: `${percent ?? 0}%` }} />
      </div>
      <div className="progress-text">
        <span>{run.state === "queued" ? "waiting for a worker" : percent === null ? "" : `${percent}%`}</span>
        <span className="muted">{parts.join(" · ")}</span>
      </div>
    </div>
  );
}

function formatEpoch(epoch: number): string {
  return Number.isInteger(epoch) ? String(epoch) : epoch.toFixed(2);
}

function Curves({ store, runId }: { store: SeriesStore; runId: number }) {
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
            title={metric}
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

/** One row per process of a distributed run, from its live `run.worker` messages. */
function WorkersTable({ run, workers }: { run: Run; workers: WorkerStatus[] }) {
  const strategy = String(run.hyperparameters?.strategy ?? "allreduce");
  return (
    <section className="card" data-testid="run-workers">
      <h2>Workers <span className="muted">{run.workers} × {strategy === "ps" ? "parameter server" : "ring all-reduce"}</span></h2>
      {workers.length === 0 ? (
        <p className="muted">{run.state === "queued" || run.state === "running" ? "Waiting for the workers to report…" : "No live worker status (it is shown while the run trains)."}</p>
      ) : (
        <table className="data workers-table">
          <thead>
            <tr><th>Worker</th><th>Process</th><th>State</th><th className="num">Step</th><th className="num">Samples/s</th><th className="num">Sent</th></tr>
          </thead>
          <tbody>
            {workers.map((worker) => (
              <tr key={worker.rank} data-testid={`worker-${worker.rank}`}>
                <th>{workerLabel(worker.rank)}</th>
                <td className="mono">{worker.host}</td>
                <td><span className={`badge ${worker.state}`} title={worker.error || undefined}>{worker.state}</span></td>
                <td className="num">{worker.step}</td>
                <td className="num">{worker.rank < 0 ? "—" : worker.samples_per_second.toFixed(0)}</td>
                <td className="num">{formatBytes(worker.bytes_sent)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function FinalMetrics({ run }: { run: Run }) {
  const entries = Object.entries(run.final_metrics ?? {});
  return (
    <section className="card">
      <h2>Final metrics</h2>
      <table className="data final-metrics">
        <tbody>
          {entries.map(([name, value]) => (
            <tr key={name}>
              <th>{name}</th>
              <td className="num" data-testid={`final-metric-${name}`} title={String(value)}>{formatValue(value)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function RunFacts({ run }: { run: Run }) {
  const hyperparameters = flattenHyperparameters(run.hyperparameters);
  const duration = durationSeconds(run);
  const facts: [string, React.ReactNode][] = [
    ["Graph", <Link to={`/projects/${run.project}`}>{run.graph_name} v{run.graph_version_number}</Link>],
    ["Dataset", <Link to={`/datasets/${run.dataset}`}>{run.dataset_name}</Link>],
    ["Device", `${run.device}${run.workers > 1 ? ` × ${run.workers} workers` : ""}`],
    ["Attempt", String(run.attempt)],
    ["Created", `${formatDateTime(run.created_at)}${run.created_by ? ` by ${run.created_by}` : ""}`],
    ["Started", formatDateTime(run.started_at)],
    ["Finished", formatDateTime(run.finished_at)],
    ["Duration", duration === null ? "" : formatDuration(duration)],
  ];
  return (
    <section className="card">
      <h2>Configuration</h2>
      <table className="data facts">
        <tbody>
          {facts.map(([name, value]) => (
            <tr key={name}><th>{name}</th><td>{value}</td></tr>
          ))}
          {Object.entries(hyperparameters).map(([name, value]) => (
            <tr key={name}><th className="mono">{name}</th><td className="mono">{formatHyperparameter(value)}</td></tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

export function formatHyperparameter(value: unknown): string {
  if (value === null || value === undefined) return "—";
  if (typeof value === "number") return String(value);
  if (typeof value === "string") return value;
  return JSON.stringify(value);
}
