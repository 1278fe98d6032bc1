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
