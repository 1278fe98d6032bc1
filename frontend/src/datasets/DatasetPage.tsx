// One dataset: its detected schema (sample shapes and dtypes, task, classes, rows) and a preview of
// its rows, as a table or, for image data, as a grid of images with their labels. An upload still
// being read by a worker shows "processing" (polled every second), a refused one the reason.
// Rename and delete are here too (delete is refused while a run or an endpoint needs the dataset).
import { useEffect, useState } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { api, ApiError, errorMessage } from "../api/client";
import type { Dataset, DatasetSample, DatasetSamples } from "../api/types";
import { formatValue } from "../charts/chart";
import { formatDateTime } from "../runs/runInfo";
import { datasetArrays, datasetState, datasetTask, formatBytes } from "./schema";
import { formToView, viewToForm, type ViewForm } from "./viewForm";
import "../runs/runs.css";
import "./datasets.css";

const TABLE_PAGE = 25;
const IMAGE_PAGE = 60;
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

function DatasetActions({ dataset, onChange }: { dataset: Dataset; onChange(dataset: Dataset): void }) {
  const navigate = useNavigate();
  const [name, setName] = useState(dataset.name);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function rename() {
    setBusy(true);
    setError(null);
    try {
      onChange(await api<Dataset>(`/api/datasets/${dataset.id}`, { method: "PATCH", json: { name: name.trim() } }));
    } catch (caught) {
      setError(errorMessage(caught));
    } finally {
      setBusy(false);
    }
  }

  async function remove() {
    if (!window.confirm(`Delete dataset "${dataset.name}" and its files?`)) return;
    setBusy(true);
    setError(null);
    try {
      await api(`/api/datasets/${dataset.id}`, { method: "DELETE" });
      navigate("/datasets");
    } catch (caught) {
      setError(errorMessage(caught)); // 409 names the runs and endpoints that need it
      setBusy(false);
    }
  }

  return (
    <div className="row dataset-actions">
      <input aria-label="Dataset name" value={name} onChange={(event) => setName(event.target.value)} maxLength={200} />
      <button onClick={() => void rename()} disabled={busy || !name.trim() || name.trim() === dataset.name}>Rename</button>
      <div className="spacer" />
      <button className="danger" onClick={() => void remove()} disabled={busy} data-testid="dataset-delete">Delete</button>
      {error && <div className="error-box" role="alert">{error}</div>}
    </div>
  );
}

function ViewEditor({ dataset, onChange }: { dataset: Dataset; onChange(dataset: Dataset): void }) {
  const [form, setForm] = useState<ViewForm>(() => viewToForm(dataset.view));
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function save() {
    const checked = formToView(form);
    if ("error" in checked) {
      setError(checked.error);
      return;
    }
    setBusy(true);
    setError(null);
    try {
      onChange(await api<Dataset>(`/api/datasets/${dataset.id}`, { method: "PATCH", json: { view: checked.view } }));
    } catch (caught) {
      setError(errorMessage(caught));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="card" data-testid="dataset-view">
      <h2>View</h2>
      <p className="muted small">How a graph receives each sample: as stored, one flat row, an image (channels × height × width) or a sequence (steps × features).</p>
      <div className="row dataset-actions">
        <select aria-label="View" value={form.kind} onChange={(event) => setForm({ ...form, kind: event.target.value as ViewForm["kind"] })}>
          <option value="">as stored</option>
          <option value="flat">flat</option>
          <option value="image">image</option>
          <option value="sequence">sequence</option>
        </select>
        {(form.kind === "image" || form.kind === "sequence") && (
          <input aria-label="View shape" value={form.shape} placeholder={form.kind === "image" ? "1, 28, 28" : "20, 3"}
            onChange={(event) => setForm({ ...form, shape: event.target.value })} />
        )}
        {form.kind === "image" && (
          <select aria-label="Image layout" value={form.layout} onChange={(event) => setForm({ ...form, layout: event.target.value as ViewForm["layout"] })}>
            <option value="chw">stored channels first</option>
            <option value="hwc">stored channels last</option>
          </select>
        )}
        <button onClick={() => void save()} disabled={busy}>Use this view</button>
      </div>
      {error && <div className="error-box" role="alert">{error}</div>}
    </section>
  );
}

function Preview({ dataset, images }: { dataset: Dataset; images: boolean }) {
  const pageSize = images ? IMAGE_PAGE : TABLE_PAGE;
  const [offset, setOffset] = useState(0);
  const [page, setPage] = useState<DatasetSamples | null>(null);
  const [fallback, setFallback] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let cancelled = false;
    setError(null);
    api<DatasetSamples>(`/api/datasets/${dataset.id}/samples?offset=${offset}&limit=${pageSize}`)
      .then((body) => !cancelled && setPage(body))
      .catch((caught) => {
        if (cancelled) return;
        if (caught instanceof ApiError && caught.status === 404 && !/dataset/i.test(caught.message)) {
          setFallback("This server has no samples route yet: showing the stored preview.");
        } else setError(errorMessage(caught));
      });
    return () => {
      cancelled = true;
    };
  }, [dataset.id, offset, pageSize]);

  if (fallback) {
    return (
      <section className="card">
        <h2>Preview</h2>
        <p className="muted small">{fallback}</p>
        <StoredPreview dataset={dataset} />
      </section>
    );
  }
  const count = page?.count ?? (typeof dataset.rows === "number" ? dataset.rows : 0);
  return (
    <section className="card preview" data-testid="dataset-preview">
      <div className="row">
        <h2>{images ? "Images" : "Rows"}</h2>
        <div className="spacer" />
        <span className="muted small">
          {count ? `${(offset + 1).toLocaleString()}–${Math.min(offset + pageSize, count).toLocaleString()} of ${count.toLocaleString()}` : ""}
        </span>
        <button onClick={() => setOffset(Math.max(0, offset - pageSize))} disabled={offset === 0}>Previous</button>
        <button onClick={() => setOffset(offset + pageSize)} disabled={!count || offset + pageSize >= count}>Next</button>
      </div>
      {error && <div className="error-box" role="alert">{error}</div>}
      {!page && !error && <div className="loading">Loading samples…</div>}
      {page && (page.results.some((sample) => sample.image) ? <ImageGrid samples={page.results} /> : <SampleTable page={page} />)}
    </section>
  );
}

function ImageGrid({ samples }: { samples: DatasetSample[] }) {
  return (
    <div className="image-grid" data-testid="dataset-images">
      {samples.map((sample) => (
        <figure key={sample.index} className="image-sample">
          {sample.image && <img src={sample.image} alt={`row ${sample.index}`} />}
          <figcaption>{sample.label_name ?? formatLabel(sample.label)} <span className="muted">#{sample.index}</span></figcaption>
        </figure>
      ))}
    </div>
  );
}

function SampleTable({ page }: { page: DatasetSamples }) {
  const rows = page.results.map((sample) => ({ sample, values: flatFeatures(sample.features) }));
  const width = Math.max(0, ...rows.map((row) => row.values.length));
  const names = page.feature_names && page.feature_names.length === width ? page.feature_names : Array.from({ length: width }, (_, i) => `x${i}`);
  return (
    <div className="table-scroll">
      <table className="data" data-testid="dataset-table">
        <thead>
          <tr><th className="num">#</th>{names.map((name) => <th key={name} className="num">{name}</th>)}<th>label</th></tr>
        </thead>
        <tbody>
          {rows.map(({ sample, values }) => (
            <tr key={sample.index}>
              <td className="num muted">{sample.index}</td>
              {values.map((value, index) => <td key={index} className="num">{formatValue(value)}</td>)}
              <td>{sample.label_name ?? formatLabel(sample.label)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function StoredPreview({ dataset }: { dataset: Dataset }) {
  const preview = (dataset.preview ?? {}) as { arrays?: Record<string, unknown[]>; feature_names?: string[]; label_names?: string[] };
  const target = dataset.schema?.target as string | undefined;
  const arrays = preview.arrays ?? {};
  const featureArray = Object.keys(arrays).find((name) => name !== target);
  const features = (featureArray ? arrays[featureArray] : []) as unknown[];
  const labels = (target ? arrays[target] : undefined) as unknown[] | undefined;
  const samples: DatasetSample[] = features.map((row, index) => {
    const label = labels?.[index];
    const labelName = typeof label === "number" && preview.label_names?.[label] !== undefined ? preview.label_names[label] : null;
    return { index, label, label_name: labelName, features: { [featureArray ?? "x"]: row } };
  });
  return <SampleTable page={{ dataset: dataset.id, count: samples.length, offset: 0, limit: samples.length, task: "", image_shape: null,
    label_names: preview.label_names ?? null, feature_names: preview.feature_names ?? null, results: samples }} />;
}

function flatFeatures(features: Record<string, unknown>): unknown[] {
  return Object.values(features).flatMap((value) => (Array.isArray(value) ? value.flat(Infinity) : [value]));
}

function formatLabel(label: unknown): string {
  if (label === null || label === undefined) return "—";
  if (typeof label === "number") return formatValue(label);
  return Array.isArray(label) ? JSON.stringify(label) : String(label);
}
