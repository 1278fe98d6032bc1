// The user's datasets and the built-in ones, and uploading a file (CSV/TSV, .npz, IDX, a zip of
// images in class folders). The server stores an upload and a worker reads it: the list shows each
// upload processing, ready, or failed with the reason (the file, line and column, or the limit), and
// polls every second while one is processing.
import { useEffect, useRef, useState, type FormEvent } from "react";
import { Link, useNavigate } from "react-router-dom";
import { api, apiAll, ApiError, apiUpload, errorMessage } from "../api/client";
import type { BuiltinDataset, Dataset } from "../api/types";
import { formatDateTime } from "../runs/runInfo";
import { datasetShape, datasetState, datasetTask, formatBytes, totalBytes } from "./schema";
import { detectFormat, guessTarget, headerColumns, type UploadFormat } from "./uploadForm";
import "../runs/runs.css";
import "./datasets.css";

export function DatasetsPage() {
  const [datasets, setDatasets] = useState<Dataset[] | null>(null);
  const [builtins, setBuiltins] = useState<BuiltinDataset[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [adding, setAdding] = useState<string | null>(null);
  const navigate = useNavigate();

  const load = () =>
    apiAll<Dataset>("/api/datasets").then(setDatasets).catch((caught) => setError(errorMessage(caught)));

  const processing = datasets?.some((dataset) => datasetState(dataset) === "processing") ?? false;
  useEffect(() => {
    if (!processing) return;
    const timer = window.setInterval(() => void load(), POLL_MS);
    return () => window.clearInterval(timer);
  }, [processing]);

  useEffect(() => {
    void load();
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
          {datasets !== null && <span className="muted small" data-testid="datasets-storage">{formatBytes(totalBytes(datasets))} stored</span>}
        </div>
        {datasets === null && !error && <div className="loading">Loading…</div>}
        {datasets !== null && datasets.length === 0 && <p className="muted">None yet: upload a file or add a built-in one below.</p>}
        {datasets !== null && datasets.length > 0 && (
          <table className="data">
            <thead>
              <tr><th>Name</th><th>State</th><th>Source</th><th>Task</th><th className="num">Rows</th><th>Sample shape</th><th>Classes</th><th className="num">Size</th><th>Added</th></tr>
            </thead>
            <tbody>
              {datasets.map((dataset) => (
                <tr key={dataset.id} data-testid={`dataset-row-${dataset.id}`}>
                  <td><Link to={`/datasets/${dataset.id}`}>{dataset.name}</Link></td>
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

const HEADER_BYTES = 64 * 1024;
const POLL_MS = 1000;

export function StateBadge({ dataset }: { dataset: Dataset }) {
  const state = datasetState(dataset);
  return (
    <span className={`dataset-state state-${state}`} data-testid={`dataset-state-${dataset.id}`} title={state === "failed" ? dataset.error : undefined}>
      {state === "processing" ? "processing…" : state}
    </span>
  );
}

function UploadForm({ onUploaded }: { onUploaded(dataset: Dataset): void }) {
  const fileInput = useRef<HTMLInputElement>(null);
  const [file, setFile] = useState<File | null>(null);
  const [labels, setLabels] = useState<File | null>(null);
  const [name, setName] = useState("");
  const [format, setFormat] = useState<UploadFormat | "">("");
  const [columns, setColumns] = useState<string[]>([]);
  const [target, setTarget] = useState("");
  const [delimiter, setDelimiter] = useState(",");
  const [task, setTask] = useState("");
  const [xKey, setXKey] = useState("");
  const [yKey, setYKey] = useState("");
  const [flatten, setFlatten] = useState(false);
  const [progress, setProgress] = useState<number | null>(null);
  const [error, setError] = useState<{ message: string; fields: Record<string, string> } | null>(null);
  const detected = file ? detectFormat(file.name) : null;
  const effective = format || detected;

  // The header row of a CSV/TSV, for the label column's list.
  useEffect(() => {
    setColumns([]);
    if (!file || (effective !== "csv" && effective !== "tsv") || file.name.toLowerCase().endsWith(".gz")) return;
    let cancelled = false;
    file.slice(0, HEADER_BYTES).text().then((text) => {
      if (cancelled) return;
      const found = headerColumns(text, effective === "tsv" ? "\t" : delimiter || ",");
      setColumns(found);
      setTarget((current) => (current && found.includes(current) ? current : guessTarget(found)));
    }).catch(() => undefined);
    return () => {
      cancelled = true;
    };
  }, [file, effective, delimiter]);

  async function submit(event: FormEvent) {
    event.preventDefault();
    if (!file) {
      setError({ message: "Choose a file first.", fields: { file: "required" } });
      return;
    }
    const form = new FormData();
    form.append("file", file);
    if (name.trim()) form.append("name", name.trim());
    if (format) form.append("format", format);
    if (effective === "csv" || effective === "tsv") {
      if (target) form.append("target", target);
      if (task) form.append("task", task);
      if (effective === "csv" && delimiter && delimiter !== ",") form.append("delimiter", delimiter === "\\t" ? "\t" : delimiter);
    } else if (effective === "npz") {
      if (xKey) form.append("x_key", xKey);
      if (yKey) form.append("y_key", yKey);
      if (task) form.append("task", task);
    } else if (effective === "idx") {
      if (labels) form.append("labels", labels);
      form.append("flatten", flatten ? "true" : "false");
    }
    setError(null);
    setProgress(0);
    try {
      const dataset = await apiUpload<Dataset>("/api/datasets/upload", form, setProgress);
      onUploaded(dataset);
    } catch (caught) {
      const fields: Record<string, string> = {};
      if (caught instanceof ApiError && caught.details && typeof caught.details === "object") {
        for (const [key, value] of Object.entries(caught.details as Record<string, unknown>)) {
          fields[key] = Array.isArray(value) ? value.join("; ") : String(value);
        }
      }
      const prefix = caught instanceof ApiError && caught.status === 413 ? "Too large: " : "";
      setError({ message: prefix + errorMessage(caught), fields });
    } finally {
      setProgress(null);
    }
  }

  const fieldError = (key: string) => error?.fields[key] && <span className="field-error">{error.fields[key]}</span>;
  return (
    <form className="card upload-form" onSubmit={submit} aria-label="Upload a dataset">
      <h2>Upload</h2>
      <p className="muted small">
        CSV or TSV with a header row (pick the label column), NumPy <code>.npz</code> with <code>x</code> and <code>y</code>,
        IDX files (MNIST's format) with their labels file, or a <code>.zip</code> of images in one folder per class.
      </p>
      <div className="upload-grid">
        <label className="wide">
          File
          <input ref={fileInput} type="file" data-testid="dataset-file" accept=".csv,.tsv,.gz,.npz,.zip,.idx,.ubyte,*"
            onChange={(event) => { setFile(event.target.files?.[0] ?? null); setError(null); }} aria-invalid={!!error?.fields.file || undefined} />
          {fieldError("file")}
        </label>
        <label>
          Name
          <input value={name} placeholder={file?.name.replace(/\.[^.]+$/, "") ?? "from the file name"} onChange={(event) => setName(event.target.value)} />
          {fieldError("name")}
        </label>
        <label>
          Format
          <select value={format} onChange={(event) => setFormat(event.target.value as UploadFormat | "")}>
            <option value="">{detected ? `from the name (${detected})` : "from the name"}</option>
            {(["csv", "tsv", "npz", "idx", "zip"] as const).map((option) => <option key={option} value={option}>{option}</option>)}
          </select>
          {fieldError("format")}
        </label>
        {(effective === "csv" || effective === "tsv") && (
          <>
            <label>
              Label column
              {columns.length ? (
                <select value={target} onChange={(event) => setTarget(event.target.value)} aria-label="Label column">
                  {columns.map((column) => <option key={column} value={column}>{column}</option>)}
                </select>
              ) : (
                <input value={target} onChange={(event) => setTarget(event.target.value)} placeholder="column name" aria-label="Label column" />
              )}
              {fieldError("target")}
            </label>
            {effective === "csv" && (
              <label>
                Delimiter
                <input value={delimiter} maxLength={2} onChange={(event) => setDelimiter(event.target.value)} className="narrow" />
                {fieldError("delimiter")}
              </label>
            )}
          </>
        )}
        {effective === "npz" && (
          <>
            <label>Features array<input value={xKey} placeholder="x" onChange={(event) => setXKey(event.target.value)} />{fieldError("x_key")}</label>
            <label>Labels array<input value={yKey} placeholder="y ('none': unlabelled)" onChange={(event) => setYKey(event.target.value)} />{fieldError("y_key")}</label>
          </>
        )}
        {(effective === "csv" || effective === "tsv" || effective === "npz") && (
          <label>
            Task
            <select value={task} onChange={(event) => setTask(event.target.value)}>
              <option value="">from the labels</option>
              <option value="classification">classification</option>
              <option value="binary">binary</option>
              <option value="regression">regression</option>
            </select>
            {fieldError("task")}
          </label>
        )}
        {effective === "idx" && (
          <>
            <label>
              Labels file (IDX)
              <input type="file" onChange={(event) => setLabels(event.target.files?.[0] ?? null)} />
              {fieldError("labels")}
            </label>
            <label className="inline">
              <input type="checkbox" checked={flatten} onChange={(event) => setFlatten(event.target.checked)} />
              flatten images to vectors
            </label>
          </>
        )}
      </div>
      {progress !== null && (
        <div className="upload-progress" role="progressbar" aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(progress * 100)}>
          <div className="progress-track"><div className="progress-fill" style={{ width: `${Math.round(progress * 100)}%` }} /></div>
          <span className="muted small">{progress < 1 ? `Uploading… ${Math.round(progress * 100)}%` : "Storing the file on the server…"}</span>
        </div>
      )}
      {error && <div className="error-box" role="alert" data-testid="upload-error">{error.message}</div>}
      <div className="row">
        <button type="submit" className="primary" disabled={progress !== null}>Upload</button>
        {file && <span className="muted small">{file.name} · {formatBytes(file.size)}</span>}
      </div>
    </form>
  );
}
