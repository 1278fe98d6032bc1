// An input node bound to a dataset: which array of the dataset feeds it, and the shape and dtype
// it then takes from the dataset's schema.
import type { Dataset } from "../api/types";
import { ROLE_INPUT_NAME, type GraphNode, type InputRole } from "./types";

type Fields = GraphNode["data"]["fields"];

interface DatasetSchema {
  arrays?: Record<string, { shape: number[]; dtype: string }>;
  /** The labels' array when it is not named "y". */
  target?: string;
}

/** The input node's fields bound to `dataset` as `role` (features read array x, labels array y or
 *  the schema's target), or unbound when `dataset` is null. */
export function bindingFields(fields: Fields, dataset: Pick<Dataset, "id" | "schema"> | null, role: InputRole): Fields {
  if (!dataset) {
    const unbound = { ...fields };
    delete unbound.dataset;
    return unbound;
  }
  const schema = (dataset.schema ?? {}) as DatasetSchema;
  const name = ROLE_INPUT_NAME[role];
  const array = schema.arrays?.[name] ?? (role === "labels" && schema.target ? schema.arrays?.[schema.target] : undefined);
  const bound: Fields = { ...fields, dataset: dataset.id, role, name };
  if (array) Object.assign(bound, { shape: array.shape, dtype: array.dtype });
  return bound;
}

/** The dataset a script or a run of the graph reads: the one bound to a features input, else the
 *  one bound to any input; null when no input is bound. */
export function boundDatasetId(nodes: readonly GraphNode[]): number | null {
  const bound = (node: GraphNode) => node.data.kind === "input" && typeof node.data.fields.dataset === "number";
  const chosen = nodes.find((node) => bound(node) && node.data.fields.role !== "labels") ?? nodes.find(bound);
  return chosen ? (chosen.data.fields.dataset as number) : null;
}
