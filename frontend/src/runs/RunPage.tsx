// One run: its state, progress, live curves over the WebSocket, final metrics, evaluation, and its
// editable name, tags and notes.
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { errorMessage } from "../api/client";
import type { Run, RunMessage } from "../api/types";
import { SeriesStore } from "../charts/series";
import { PublishButton } from "../endpoints/PublishButton";
import { LayerStatsFeed } from "../layerstats/feed";
import { LayersView } from "../layerstats/LayersView";
import type { LayerSample } from "../layerstats/stats";
import { fetchRun, runAction } from "./api";
import { EvaluationSection } from "./EvaluationSection";
import { LiveRunClient, type ConnectionStatus } from "./live";
import { RunAnnotations } from "./RunAnnotations";
import { RunLifecycleButtons } from "./RunLifecycle";
import { Curves } from "./RunCurves";
import { FinalMetrics, RunFacts, WorkersTable } from "./RunDetails";
import { isFinished, RESUMABLE_STATES, runTitle, stateLabel } from "./runInfo";
import { PublishedNote } from "./PublishedMark";
import { ProgressBar } from "./RunProgress";
import { ExportScriptButton, RerunButton } from "./RunRerun";
import { isWorkerStatus, mergeWorkerStatus, type WorkerStatus } from "./workerStatus";
import "./runs.css";

export function RunPage() {
  const runId = Number(useParams().runId);
  const navigate = useNavigate();
  const [run, setRun] = useState<Run | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [connection, setConnection] = useState<{ status: ConnectionStatus; detail?: string }>({ status: "connecting" });
  const [actionError, setActionError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [workers, setWorkers] = useState<WorkerStatus[]>([]);
  const store = useMemo(() => new SeriesStore(), [runId]);
  const layerFeed = useMemo(() => new LayerStatsFeed(), [runId]);
  const clientRef = useRef<LiveRunClient | null>(null);

  const reload = useCallback(async () => {
    try {
      setRun(await fetchRun(runId));
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
        layerStats: (message) => layerFeed.push((message as { samples: LayerSample[] }).samples ?? []),
      },
    });
    clientRef.current = client;
    client.start();
    return () => {
      client.stop();
      clientRef.current = null;
    };
  }, [runId, store, layerFeed, reload]);

  async function act(action: "cancel" | "resume") {
    setBusy(true);
    setActionError(null);
    try {
      setRun(await runAction(runId, action));
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
        <span className={`badge ${run.state}`} data-testid="run-state">{stateLabel(run.state)}</span>
        {run.cancel_requested && active && <span className="muted">cancelling…</span>}
        <LiveIndicator status={connection.status} detail={connection.detail} finished={isFinished(run.state)} />
        <div className="spacer" />
        {active && (
          <button className="danger" onClick={() => void act("cancel")} disabled={busy || run.cancel_requested}>Cancel</button>
        )}
        {RESUMABLE_STATES.includes(run.state) && (
          <button onClick={() => void act("resume")} disabled={busy} title="Continue from the newest checkpoint">Resume</button>
        )}
        <RerunButton run={run} />
        <ExportScriptButton runId={run.id} />
        <PublishedNote run={run} />
        {run.state === "succeeded" && <PublishButton runId={run.id} />}
        {run.archived_at && <span className="badge archived" data-testid="run-archived">archived</span>}
        <RunLifecycleButtons run={run} onChanged={setRun} onDeleted={() => navigate(`/projects/${run.project}/runs`)} />
      </header>
      {actionError && <div className="error-box" role="alert">{actionError}</div>}
      {run.state === "timed_out" && run.error && (
        <div className="notice-box" role="status"><strong>Time limit reached:</strong> {run.error}</div>
      )}
      {run.state === "failed" && run.error && (
        <div className="error-box run-error" role="alert"><strong>Training failed:</strong> <pre>{run.error}</pre></div>
      )}
      <ProgressBar store={store} run={run} />
      {run.workers > 1 && <WorkersTable run={run} workers={workers} />}
      <Curves store={store} runId={runId} />
      <LayersView run={run} feed={layerFeed} />
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
