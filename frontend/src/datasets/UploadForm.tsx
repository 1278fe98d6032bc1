// The upload form: a file (CSV/TSV, .npz, IDX with its labels file, a zip of images in class
// folders) and the options of its format, sent with a progress bar; server errors land on the fields.
import { useEffect, useRef, useState, type FormEvent } from "react";
import { ApiError, apiUpload, errorMessage } from "../api/client";
import type { Dataset } from "../api/types";
import { formatBytes } from "./schema";
import { detectFormat, guessTarget, headerColumns, type UploadFormat } from "./uploadForm";

const HEADER_BYTES = 64 * 1024;

export function UploadForm({ onUploaded }: { onUploaded(dataset: Dataset): void }) {
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
