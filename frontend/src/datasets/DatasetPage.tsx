// One dataset: its detected schema (sample shapes and dtypes, task, classes, rows) and a preview of
// its rows, as a table or, for image data, as a grid of images with their labels. An upload still
// being read by a worker shows "processing" (polled every second), a refused one the reason.
// Rename and delete are here too (delete is refused while a run or an endpoint needs the dataset).
import { useEffect, useState } from "react";
import { Link, useParams } from "react-router-dom";
import { api, errorMessage } from "../api/client";
import type { Dataset } from "../api/types";
import { formatDateTime } from "../runs/runInfo";
import { datasetArrays, datasetState, datasetTask, formatBytes } from "./schema";
import { DatasetActions, ViewEditor } from "./DatasetControls";
import { Preview } from "./DatasetPreview";
import "../runs/runs.css";
import "./datasets.css";

const POLL_MS = 1000;

export function DatasetPage() {
  const datasetId = Number(useParams().datasetId);
  const [dataset, setDataset] = useState<Dataset | null>(null);
  const [error, setError] = useState<string | null>(null);
  const state = dataset ? datasetState(dataset) : null;

  useEffect(() => {
    setDataset(null);
    api<Dataset>(`/api/datasets/${datasetId}`).then(setDataset).catch((caught) => setError(errorMessage(caught)));
  }, [datasetId]);

  useEffect(() => {
    if (state !== "processing") return;
    const timer = window.setInterval(() => {
      api<Dataset>(`/api/datasets/${datasetId}`).then(setDataset).catch((caught) => setError(errorMessage(caught)));
    }, POLL_MS);
    return () => window.clearInterval(timer);
  }, [datasetId, state]);

  if (error) return <div className="card error-box" role="alert">Could not load dataset {datasetId}: {error}</div>;
  if (!dataset) return <div className="loading">Loading dataset…</div>;
  if (state !== "ready") {
    return (
      <div className="dataset-page">
        <nav className="crumbs"><Link to="/datasets">Datasets</Link><span>/</span><span>{dataset.name}</span></nav>
        <h1>{dataset.name}</h1>
        {state === "processing" ? (
          <div className="card" data-testid="dataset-processing">
            <p>Processing: a worker is reading and converting <span className="mono">{String(dataset.original_name ?? "")}</span>. This page updates when it is done.</p>
          </div>
        ) : (
          <div className="card error-box" role="alert" data-testid="dataset-failed">The upload could not be used: {dataset.error}</div>
        )}
        <DatasetActions dataset={dataset} onChange={setDataset} />
      </div>
    );
  }

  const schema = dataset.schema ?? {};
  const labelNames = Array.isArray(schema.label_names) ? (schema.label_names as string[]) : [];
  const imageShape = Array.isArray(dataset.image_shape) ? (dataset.image_shape as number[]) : null;
  return (
    <div className="dataset-page">
      <nav className="crumbs"><Link to="/datasets">Datasets</Link><span>/</span><span>{dataset.name}</span></nav>
      <h1>{dataset.name}</h1>
      {typeof schema.description === "string" && <p className="muted">{schema.description}</p>}
      <DatasetActions dataset={dataset} onChange={setDataset} />
      <div className="dataset-columns">
        <section className="card">
          <h2>Schema</h2>
          <table className="data facts" data-testid="dataset-schema">
            <tbody>
              <tr><th>Task</th><td>{datasetTask(dataset) || "—"}</td></tr>
              <tr><th>Rows</th><td data-testid="dataset-rows">{typeof dataset.rows === "number" ? dataset.rows.toLocaleString() : String(schema.rows ?? "")}</td></tr>
              <tr><th>Source</th><td>{dataset.kind === "builtin" ? `built-in ${dataset.builtin_name}` : `${dataset.file_format} upload ${String(dataset.file_name ?? "")}`}</td></tr>
              {typeof schema.num_classes === "number" && <tr><th>Classes</th><td data-testid="dataset-classes">{schema.num_classes}</td></tr>}
              {imageShape && <tr><th>Images</th><td className="mono">{imageShape.join(" × ")} (channels × height × width)</td></tr>}
              {dataset.size_bytes > 0 && <tr><th>Stored</th><td data-testid="dataset-size">{formatBytes(dataset.size_bytes)}</td></tr>}
              <tr><th>Added</th><td>{formatDateTime(dataset.created_at as string | undefined)}</td></tr>
            </tbody>
          </table>
          <h3>Arrays</h3>
          <table className="data" data-testid="dataset-arrays">
            <thead><tr><th>Array</th><th>Per-row shape</th><th>dtype</th><th>Role</th></tr></thead>
            <tbody>
              {Object.entries(datasetArrays(dataset)).map(([name, array]) => (
                <tr key={name}>
                  <td className="mono">{name}</td>
                  <td className="mono">[{array.shape.join(", ")}]</td>
                  <td className="mono">{array.dtype}</td>
                  <td>{name === schema.target ? "labels" : "features"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
        {labelNames.length > 0 && (
          <section className="card">
            <h2>Classes</h2>
            <ol className="class-list" start={0}>
              {labelNames.map((label, index) => <li key={index}>{label}</li>)}
            </ol>
          </section>
        )}
      </div>
      <ViewEditor dataset={dataset} onChange={setDataset} />
      <Preview key={JSON.stringify(dataset.view ?? {})} dataset={dataset} images={imageShape !== null} />
    </div>
  );
}
