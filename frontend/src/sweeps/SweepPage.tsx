// One sweep: its settings, its trials grouped by state (each a run, linked), the parallel-coordinates
// plot, the parameters' importance, and its best trial with "Publish" (the run's own publish flow).
// It is read again every few seconds while the sweep runs.
import { useCallback, useEffect, useState } from "react";
import { Link, useParams } from "react-router-dom";
import { errorMessage } from "../api/client";
import type { SweepDetail, Trial } from "../api/types";
import { PublishButton } from "../endpoints/PublishButton";
import { cancelSweep, fetchSweep } from "./api";
import { ParallelCoordinates } from "./ParallelCoordinates";
import { formatValue, importanceBars, trialCounts } from "./sweepLogic";
import "../runs/runs.css";
import "./sweeps.css";

const POLL_MILLISECONDS = 2000;

export function sweepTitle(sweep: Pick<SweepDetail, "id" | "name">): string {
  return sweep.name || `Sweep ${sweep.id}`;
}

const SAMPLERS: Record<string, string> = { grid: "grid", random: "random", tpe: "TPE (Optuna)" };
const PRUNERS: Record<string, string> = { none: "no pruning", median: "median pruning", successive_halving: "successive halving" };

export function SweepPage() {
  const sweepId = Number(useParams().sweepId);
  const [sweep, setSweep] = useState<SweepDetail | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const reload = useCallback(async () => {
    try {
      setSweep(await fetchSweep(sweepId));
      setLoadError(null);
    } catch (error) {
      setLoadError(errorMessage(error));
    }
  }, [sweepId]);

  useEffect(() => {
    setSweep(null);
    void reload();
  }, [reload]);

  const running = sweep?.state === "running";
  useEffect(() => {
    if (!running) return;
    const timer = window.setInterval(() => void reload(), POLL_MILLISECONDS);
    return () => window.clearInterval(timer);
  }, [running, reload]);

  async function cancel() {
    setBusy(true);
    setActionError(null);
    try {
      setSweep(await cancelSweep(sweepId));
    } catch (error) {
      setActionError(errorMessage(error));
    } finally {
      setBusy(false);
    }
  }

  if (loadError && !sweep) return <div className="card error-box" role="alert">Could not load sweep {sweepId}: {loadError}</div>;
  if (!sweep) return <div className="loading">Loading sweep…</div>;

  const best = sweep.trials.find((trial) => trial.number === sweep.best_trial) ?? null;
  const bars = importanceBars(sweep.importance);
  return (
    <div className="sweep-page">
      <nav className="crumbs">
        <Link to={`/projects/${sweep.project}`}>Editor</Link>
        <span>/</span>
        <Link to={`/projects/${sweep.project}/sweeps`}>Sweeps</Link>
        <span>/</span>
        <span>{sweepTitle(sweep)}</span>
      </nav>
      <header className="run-header">
        <h1>{sweepTitle(sweep)}</h1>
        <span className={`badge ${sweep.state}`} data-testid="sweep-state">{sweep.state}</span>
        <span className="muted">{sweep.trials_finished} of {sweep.trial_budget} trials finished</span>
        <div className="spacer" />
        {running && <button className="danger" onClick={() => void cancel()} disabled={busy}>Cancel sweep</button>}
      </header>
      {actionError && <div className="error-box" role="alert">{actionError}</div>}
      {sweep.waiting_reason && <div className="notice-box" role="status"><strong>Waiting to start more trials:</strong> {sweep.waiting_reason}</div>}
      <p className="sweep-facts">
        {SAMPLERS[sweep.sampler] ?? sweep.sampler} over {sweep.parameters.length} parameter{sweep.parameters.length === 1 ? "" : "s"},
        {" "}{sweep.parallelism} at once, {PRUNERS[sweep.pruner] ?? sweep.pruner}; {sweep.direction} <strong>{sweep.metric}</strong>
        {" "}· graph <Link to={`/projects/${sweep.project}`}>{sweep.graph_name} v{sweep.graph_version_number}</Link> on {sweep.dataset_name}
      </p>

      <section className="card best-trial" data-testid="best-trial">
        <h2>Best trial</h2>
        {best && best.run ? (
          <div className="best-row">
            <span>Trial {best.number}: {sweep.metric} <strong>{formatValue(best.value)}</strong></span>
            <span className="muted">{paramsText(best)}</span>
            <Link to={`/runs/${best.run}`}>run {best.run}</Link>
            <PublishButton runId={best.run} />
          </div>
        ) : <p className="muted">None yet: the first trial to complete with a {sweep.metric} becomes the best.</p>}
      </section>

      <div className="sweep-columns">
        <section className="card">
          <h2>Parallel coordinates</h2>
          {sweep.trials.length ? <ParallelCoordinates sweep={sweep} /> : <p className="muted">No trials yet.</p>}
        </section>
        <section className="card importance" data-testid="importance">
          <h2>Parameter importance</h2>
          {bars.length ? (
            <ul className="importance-bars">
              {bars.map((bar) => (
                <li key={bar.name}>
                  <span className="bar-name">{bar.name.replace(/^node:/, "")}</span>
                  <span className="bar" aria-hidden="true"><span style={{ width: `${(bar.share * 100).toFixed(1)}%` }} /></span>
                  <span className="bar-share">{(bar.share * 100).toFixed(0)}%</span>
                </li>
              ))}
            </ul>
          ) : <p className="muted">Shown once 3 trials have completed with different values (fANOVA).</p>}
        </section>
      </div>

      <section className="card">
        <h2>Trials</h2>
        <p className="trial-counts" data-testid="trial-counts">
          {trialCounts(sweep.trials).map((entry) => <span key={entry.state} className={`badge ${entry.state}`}>{entry.count} {entry.state}</span>)}
        </p>
        <table className="trials-table" data-testid="trials-table">
          <thead>
            <tr><th>#</th><th>State</th>{sweep.parameters.map((parameter) => <th key={parameter.name}>{parameter.name.replace(/^node:/, "")}</th>)}<th>{sweep.metric}</th><th>Epochs</th><th>Run</th><th>Note</th></tr>
          </thead>
          <tbody>
            {sweep.trials.map((trial) => (
              <tr key={trial.number} className={trial.number === sweep.best_trial ? "best" : undefined} data-trial={trial.number}>
                <td>{trial.number}{trial.number === sweep.best_trial && <span className="best-mark" title="best trial"> ★</span>}</td>
                <td><span className={`badge ${trial.state}`}>{trial.state}</span></td>
                {sweep.parameters.map((parameter) => <td key={parameter.name}>{formatValue(trial.params[parameter.name])}</td>)}
                <td>{formatValue(trial.value)}</td>
                <td>{trial.epochs_completed ?? "—"}</td>
                <td>{trial.run ? <Link to={`/runs/${trial.run}`}>{trial.run_state ?? "run"} #{trial.run}</Link> : "—"}</td>
                <td className="muted">{trial.error}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    </div>
  );
}

function paramsText(trial: Trial): string {
  return Object.entries(trial.params).map(([name, value]) => `${name.replace(/^node:/, "")} = ${formatValue(value)}`).join(", ");
}
