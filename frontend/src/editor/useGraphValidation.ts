// Live validation: the server checks the canvas a moment after the last change (and against the
// dataset it will train on, when one is known), and the report (shapes, parameter counts, errors
// per node with their fixes) goes to the store for the canvas to draw.
import { useEffect, useState } from "react";
import { errorMessage } from "../api/client";
import { validateDocument } from "./api";
import { selectTrainingDataset, useEditorStore } from "./store";

/** How long after the last change the canvas is validated (tests/browser/editor_actions.py waits for it). */
export const VALIDATE_DELAY_MS = 300;

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
      validateDocument(document, dataset)
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
