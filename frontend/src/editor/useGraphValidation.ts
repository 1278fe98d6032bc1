// Live validation: the server checks the canvas a moment after the last change (and against the
// dataset it will train on, when one is known), and the report (shapes, parameter counts, errors
// per node with their fixes) goes to the store for the canvas to draw.
import { useEffect, useState } from "react";
import { ApiError, errorMessage } from "../api/client";
import type { EditorDocument, ValidationReport } from "../api/types";
import { validateDocument } from "./api";
import { selectTrainingDataset, useEditorStore } from "./store";

/** How long after the last change the canvas is validated (tests/browser/editor_actions.py waits for it). */
export const VALIDATE_DELAY_MS = 300;

/** The report against `dataset`; without it when the dataset is gone (deleted since it was chosen
 *  or bound): the graph's own checks still count. */
async function validateAgainst(document: EditorDocument, dataset: number | null): Promise<ValidationReport> {
  try {
    return await validateDocument(document, dataset);
  } catch (caught) {
    if (dataset !== null && caught instanceof ApiError && caught.status === 404) return validateDocument(document, null);
    throw caught;
  }
}

export function useGraphValidation(): { validating: boolean; validationFailed: string | null } {
  // Keyed on the document's text: selection changes draw a new canvas but leave nothing to validate.
  const key = useEditorStore((state) => state.documentKey);
  const dataset = useEditorStore(selectTrainingDataset);
  const datasetRevision = useEditorStore((state) => state.datasetRevision);
  const [validating, setValidating] = useState(false);
  const [validationFailed, setValidationFailed] = useState<string | null>(null);
  useEffect(() => {
    let stale = false;
    const { document, documentKey } = useEditorStore.getState();
    const timer = window.setTimeout(() => {
      setValidating(true);
      validateAgainst(document, dataset)
        .then((report) => {
          if (stale) return;
          useEditorStore.getState().setReport(report, documentKey);
          setValidationFailed(null);
        })
        .catch((caught) => !stale && setValidationFailed(errorMessage(caught)))
        .finally(() => !stale && setValidating(false));
    }, VALIDATE_DELAY_MS);
    return () => {
      stale = true;
      window.clearTimeout(timer);
    };
  }, [key, dataset, datasetRevision]);
  return { validating, validationFailed };
}
