// What a run page lists besides its curves: the workers of a distributed run, the final metrics,
// and the run's configuration.
import { useEffect, useState, type ReactNode } from "react";
import { Link } from "react-router-dom";
import type { Run } from "../api/types";
import { formatDuration, formatValue } from "../charts/chart";
import { durationSeconds, formatDateTime, flattenHyperparameters } from "./runInfo";
import { formatBytes, workerLabel, type WorkerStatus } from "./workerStatus";

/** One row per process of a distributed run, from its live `run.worker` messages. */
export function WorkersTable({ run, workers }: { run: Run; workers: WorkerStatus[] }) {
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

export function FinalMetrics({ run }: { run: Run }) {
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

/** Re-renders every second while `live`: a running run's duration counts up between the server's messages. */
function useTicking(live: boolean): void {
  const [, setTick] = useState(0);
  useEffect(() => {
    if (!live) return;
    const timer = setInterval(() => setTick((tick) => tick + 1), 1000);
    return () => clearInterval(timer);
  }, [live]);
}

export function RunFacts({ run }: { run: Run }) {
  useTicking(run.state === "running" && !run.finished_at);
  const hyperparameters = flattenHyperparameters(run.hyperparameters);
  const duration = durationSeconds(run);
  const facts: [string, ReactNode][] = [
    ["Graph", <Link to={`/projects/${run.project}`}>{run.graph_name} v{run.graph_version_number}</Link>],
    ["Dataset", <Link to={`/datasets/${run.dataset}`}>{run.dataset_name}</Link>],
    // Lineage: the run whose checkpoint gave this one its starting weights (fine-tuning).
    ...(run.parent ? [["Started from", <Link to={`/runs/${run.parent}`} data-testid="run-parent">run {run.parent}</Link>] as [string, ReactNode]] : []),
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
