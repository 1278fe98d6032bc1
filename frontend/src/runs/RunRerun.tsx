// The run page's "Rerun with changes" (the editor's train panel, filled from the run and training its
// graph version; starting it is an ordinary new run) and "Export Python" (GET /api/runs/<id>/script:
// a script with the run's exact settings and seed).
import { useEffect, useState } from "react";
import { useNavigate } from "react-router-dom";
import type { Run } from "../api/types";
import type { RunSettings } from "./rerunForm";
import { TrainPanel } from "./TrainPanel";
import "./rerun.css";

export function RerunButton({ run }: { run: Run }) {
  const navigate = useNavigate();
  // Taken when the panel opens, so that the run's reloads while it is open do not reset the form.
  const [settings, setSettings] = useState<RunSettings | null>(null);
  const close = () => setSettings(null);
  useEffect(() => {
    if (!settings) return;
    const onKey = (event: KeyboardEvent) => event.key === "Escape" && setSettings(null);
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [settings]);
  const open = () => setSettings({ dataset: run.dataset, hyperparameters: run.hyperparameters, device: run.device, workers: run.workers, tags: run.tags });
  return (
    <>
      <button onClick={open} title={`Open the train panel with this run's settings, for ${run.graph_name} v${run.graph_version_number}`}>
        Rerun with changes
      </button>
      {settings && (
        <div className="rerun-backdrop" onMouseDown={(event) => event.target === event.currentTarget && close()}>
          <div className="card rerun-dialog" role="dialog" aria-modal="true" aria-label="Rerun with changes">
            <h2>Rerun with changes <span className="muted">{run.graph_name} v{run.graph_version_number}</span></h2>
            <TrainPanel projectId={run.project} graphVersionId={run.graph_version} initialSettings={settings}
              onStarted={(started) => navigate(`/runs/${started.id}`)} onClose={close} />
          </div>
        </div>
      )}
    </>
  );
}

/** Downloads the run's script under the name the server gives it (Content-Disposition). */
export function ExportScriptButton({ runId }: { runId: number }) {
  function download() {
    const anchor = document.createElement("a");
    anchor.href = `/api/runs/${runId}/script`;
    anchor.download = "";
    document.body.appendChild(anchor);
    anchor.click();
    anchor.remove();
  }
  return <button onClick={download} title="A Python script that trains this graph with this run's exact settings and seed">Export Python</button>;
}
