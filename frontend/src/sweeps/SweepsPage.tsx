// A project's sweeps, newest first, each with its progress; a sweep's trials are on its own page.
import { useEffect, useState } from "react";
import { Link, useParams } from "react-router-dom";
import { errorMessage } from "../api/client";
import type { Sweep } from "../api/types";
import { fetchProjectSweeps } from "./api";
import { sweepTitle } from "./SweepPage";
import "../runs/runs.css";
import "./sweeps.css";

export function SweepsPage() {
  const projectId = Number(useParams().projectId);
  const [sweeps, setSweeps] = useState<Sweep[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    fetchProjectSweeps(projectId).then(setSweeps).catch((caught) => setError(errorMessage(caught)));
  }, [projectId]);

  if (error) return <div className="card error-box" role="alert">Could not load the sweeps: {error}</div>;
  if (!sweeps) return <div className="loading">Loading sweeps…</div>;
  return (
    <div className="sweep-page">
      <nav className="crumbs">
        <Link to={`/projects/${projectId}`}>Editor</Link>
        <span>/</span>
        <Link to={`/projects/${projectId}/runs`}>Runs</Link>
        <span>/</span>
        <span>Sweeps</span>
      </nav>
      <header className="page-header"><h1>Sweeps</h1></header>
      {sweeps.length === 0 ? <p className="muted">No sweeps yet: start one from the editor's Train dialog ("Sweep").</p> : (
        <table className="trials-table">
          <thead><tr><th>Sweep</th><th>State</th><th>Trials</th><th>Optimizes</th><th>Created</th></tr></thead>
          <tbody>
            {sweeps.map((sweep) => (
              <tr key={sweep.id}>
                <td><Link to={`/sweeps/${sweep.id}`}>{sweepTitle(sweep)}</Link></td>
                <td><span className={`badge ${sweep.state}`}>{sweep.state}</span></td>
                <td>{sweep.trials_finished} / {sweep.trial_budget}</td>
                <td>{sweep.direction} {sweep.metric}</td>
                <td>{new Date(sweep.created_at).toLocaleString()}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
