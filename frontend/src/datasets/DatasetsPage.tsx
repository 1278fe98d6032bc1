// The user's datasets and the built-in ones, and uploading a file (CSV/TSV, .npz, IDX, a zip of
// images in class folders). The server stores an upload and a worker reads it: the list shows each
// upload processing, ready, or failed with the reason (the file, line and column, or the limit), and
// polls every second while one is processing. Archived datasets are hidden until the "Archived"
// filter shows them (a dataset's page archives, unarchives and deletes it).
import { useEffect, useState } from "react";
import { Link, useNavigate } from "react-router-dom";
import { api, apiAll, errorMessage } from "../api/client";
import type { BuiltinDataset, Dataset } from "../api/types";
import { formatDateTime } from "../runs/runInfo";
import { datasetShape, datasetState, datasetTask, formatBytes, totalBytes } from "./schema";
import { StateBadge } from "./StateBadge";
import { UploadForm } from "./UploadForm";
import "../runs/runs.css";
import "./datasets.css";

export function DatasetsPage() {
  const [datasets, setDatasets] = useState<Dataset[] | null>(null);
  const [builtins, setBuiltins] = useState<BuiltinDataset[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [adding, setAdding] = useState<string | null>(null);
  const [archived, setArchived] = useState<"false" | "true" | "all">("false");
  const navigate = useNavigate();

  const load = () =>
    apiAll<Dataset>(`/api/datasets${archived === "false" ? "" : `?archived=${archived}`}`).then(setDatasets).catch((caught) => setError(errorMessage(caught)));

  const processing = datasets?.some((dataset) => datasetState(dataset) === "processing") ?? false;
  useEffect(() => {
    if (!processing) return;
    const timer = window.setInterval(() => void load(), POLL_MS);
    return () => window.clearInterval(timer);
  }, [processing]);

  useEffect(() => {
    void load();
  }, [archived]); // load reads `archived`

  useEffect(() => {
    api<{ results: BuiltinDataset[] }>("/api/datasets/builtin").then((body) => setBuiltins(body.results)).catch(() => setBuiltins([]));
  }, []);

  async function addBuiltin(name: string) {
    setAdding(name);
    setError(null);
    try {
      const dataset = await api<Dataset>("/api/datasets", { method: "POST", json: { builtin: name } });
      navigate(`/datasets/${dataset.id}`);
    } catch (caught) {
      setError(errorMessage(caught));
    } finally {
      setAdding(null);
    }
  }

  return (
    <div className="datasets-page">
      <h1>Datasets</h1>
      {error && <div className="error-box" role="alert">{error}</div>}
      <section className="card">
        <div className="row">
          <h2>Your datasets</h2>
          <div className="spacer" />
          <label className="row">
            Archived
            <select value={archived} onChange={(event) => setArchived(event.target.value as typeof archived)} data-testid="datasets-archived-filter">
              <option value="false">hidden</option>
              <option value="true">only archived</option>
              <option value="all">shown too</option>
            </select>
          </label>
          {datasets !== null && <span className="muted small" data-testid="datasets-storage">{formatBytes(totalBytes(datasets))} stored</span>}
        </div>
        {datasets === null && !error && <div className="loading">Loading…</div>}
        {datasets !== null && datasets.length === 0 && <p className="muted">{archived === "true" ? "No archived datasets." : "None yet: upload a file or add a built-in one below."}</p>}
        {datasets !== null && datasets.length > 0 && (
          <table className="data">
            <thead>
              <tr><th>Name</th><th>State</th><th>Source</th><th>Task</th><th className="num">Rows</th><th>Sample shape</th><th>Classes</th><th className="num">Size</th><th>Added</th></tr>
            </thead>
            <tbody>
              {datasets.map((dataset) => (
                <tr key={dataset.id} data-testid={`dataset-row-${dataset.id}`}>
                  <td><Link to={`/datasets/${dataset.id}`}>{dataset.name}</Link>{dataset.archived_at && <span className="badge archived">archived</span>}</td>
                  <td><StateBadge dataset={dataset} /></td>
                  <td>{dataset.kind === "builtin" ? `built-in ${dataset.builtin_name}` : `${dataset.file_format} ${String(dataset.file_name ?? "")}`}</td>
                  <td>{datasetTask(dataset)}</td>
                  <td className="num">{typeof dataset.rows === "number" ? dataset.rows.toLocaleString() : ""}</td>
                  <td className="mono">{datasetShape(dataset)}</td>
                  <td>{typeof dataset.schema?.num_classes === "number" ? dataset.schema.num_classes : ""}</td>
                  <td className="num">{dataset.size_bytes ? formatBytes(dataset.size_bytes) : ""}</td>
                  <td>{formatDateTime(dataset.created_at as string | undefined)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <UploadForm onUploaded={(dataset) => navigate(`/datasets/${dataset.id}`)} />
      <section className="card">
        <h2>Built-in datasets</h2>
        <table className="data">
          <thead><tr><th>Name</th><th>Task</th><th>Description</th><th>Sample shape</th><th /></tr></thead>
          <tbody>
            {builtins.map((builtin) => (
              <tr key={builtin.name}>
                <td className="mono">{builtin.name}</td>
                <td>{builtin.task}</td>
                <td className="wrap">{builtin.description}</td>
                <td className="mono">{JSON.stringify(builtin.shapes.x ?? Object.values(builtin.shapes)[0] ?? [])}</td>
                <td><button onClick={() => void addBuiltin(builtin.name)} disabled={adding !== null}>{adding === builtin.name ? "Adding…" : "Add"}</button></td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    </div>
  );
}

const POLL_MS = 1000;
