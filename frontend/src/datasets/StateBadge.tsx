// A dataset's state as a badge: processing (a worker is converting the upload), ready, or failed
// with the reason in its tooltip.
import type { Dataset } from "../api/types";
import { datasetState } from "./schema";

export function StateBadge({ dataset }: { dataset: Dataset }) {
  const state = datasetState(dataset);
  return (
    <span className={`dataset-state state-${state}`} data-testid={`dataset-state-${dataset.id}`} title={state === "failed" ? dataset.error : undefined}>
      {state === "processing" ? "processing…" : state}
    </span>
  );
}
