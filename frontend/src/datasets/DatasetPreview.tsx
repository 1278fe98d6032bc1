// A page of a dataset's samples: a grid of images with their labels for image data, else a table
// of feature values; the stored preview where the server has no samples route.
import { useEffect, useState } from "react";
import { api, ApiError, errorMessage } from "../api/client";
import type { Dataset, DatasetSample, DatasetSamples } from "../api/types";
import { formatValue } from "../charts/chart";

const TABLE_PAGE = 25;
const IMAGE_PAGE = 60;

export function Preview({ dataset, images }: { dataset: Dataset; images: boolean }) {
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
