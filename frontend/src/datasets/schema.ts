// Reading a dataset's stored schema (engine Dataset.schema(): arrays with per-row shapes and dtypes,
// task, classes, rows) for lists and the detail page.
import type { Dataset } from "../api/types";

export interface ArraySchema {
  shape: number[];
  dtype: string;
}

export function datasetArrays(dataset: Dataset): Record<string, ArraySchema> {
  const arrays = dataset.schema?.arrays;
  return arrays && typeof arrays === "object" ? (arrays as Record<string, ArraySchema>) : {};
}

export function datasetTask(dataset: Dataset): string {
  return typeof dataset.schema?.task === "string" ? dataset.schema.task : "";
}

/** The per-row shape of the features (every array but the target), e.g. "x [64]". */
export function datasetShape(dataset: Dataset): string {
  const target = dataset.schema?.target;
  return Object.entries(datasetArrays(dataset))
    .filter(([name]) => name !== target)
    .map(([name, array]) => `${name} [${array.shape.join(", ")}]`)
    .join(", ");
}

export type DatasetState = "processing" | "ready" | "failed";

/** An upload is "processing" until a worker has read and converted it; older servers send no state. */
export function datasetState(dataset: Dataset): DatasetState {
  const state = (dataset as { state?: string }).state;
  return state === "processing" || state === "failed" ? state : "ready";
}

/** Bytes as a short size ("1.5 MB"), in the units the server's messages use. */
export function formatBytes(count: number): string {
  const units = ["bytes", "KB", "MB", "GB", "TB"];
  let value = count;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

/** The disk used by the datasets, all together. */
export function totalBytes(datasets: Dataset[]): number {
  return datasets.reduce((sum, dataset) => sum + (typeof dataset.size_bytes === "number" ? dataset.size_bytes : 0), 0);
}
