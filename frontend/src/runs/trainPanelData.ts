// What the train panel loads: the training-option schema (GET /api/training-options, once per page
// load: it changes only with a new engine), the dataset choices, and the settings the trained graph
// version recommends (a zoo template's metadata.train and metadata.dataset, kept in its spec).
import { api, apiAll } from "../api/client";
import type { BuiltinDataset, Dataset } from "../api/types";
import type { Recommended } from "./trainConfig";
import type { TrainingOptionsSchema } from "./trainingOptions";

export interface DatasetChoices {
  datasets: Dataset[];
  builtins: BuiltinDataset[];
}

export interface TrainPanelData extends DatasetChoices {
  schema: TrainingOptionsSchema;
}

let schemaRequest: Promise<TrainingOptionsSchema> | null = null;

export function fetchTrainingOptions(): Promise<TrainingOptionsSchema> {
  schemaRequest ??= api<TrainingOptionsSchema>("/api/training-options").catch((error) => {
    schemaRequest = null;
    throw error;
  });
  return schemaRequest;
}

// The last data loaded, so the panel opens with its choices in place; refreshed on every open.
export let cachedTrainPanelData: TrainPanelData | null = null;
let pending: Promise<TrainPanelData> | null = null;

/** Load the schema and the dataset choices ahead of opening the panel (the editor may call it when it mounts). */
export function prefetchTrainPanelData(): Promise<TrainPanelData> {
  pending ??= Promise.all([
    fetchTrainingOptions(),
    apiAll<Dataset>("/api/datasets"),
    api<{ results: BuiltinDataset[] }>("/api/datasets/builtin").then((body) => body.results).catch(() => []),
  ])
    .then(([schema, datasets, builtins]) => (cachedTrainPanelData = { schema, datasets, builtins }))
    .finally(() => {
      pending = null;
    });
  return pending;
}

export function rememberDataset(created: Dataset): void {
  if (cachedTrainPanelData) cachedTrainPanelData = { ...cachedTrainPanelData, datasets: [created, ...cachedTrainPanelData.datasets] };
}

/** The graph version's recommended settings (none for a graph not started from a template, or when it cannot be read). */
export async function fetchRecommended(projectId: number, graphVersionId: number): Promise<Recommended | null> {
  try {
    const version = await api<{ spec?: { metadata?: Record<string, unknown> } }>(`/api/projects/${projectId}/versions/${graphVersionId}`);
    const metadata = version.spec?.metadata;
    if (!metadata || typeof metadata !== "object") return null;
    const train = metadata.train && typeof metadata.train === "object" ? (metadata.train as Recommended["train"]) : undefined;
    const dataset = typeof metadata.dataset === "string" ? metadata.dataset : undefined;
    return train || dataset ? { train, dataset } : null;
  } catch {
    return null;
  }
}
