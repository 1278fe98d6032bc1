// What the trained model does on the held-out split: confusion matrix, per-class precision and
// recall, sample predictions (as images for image data), or true against predicted for regression.
import { useEffect, useState } from "react";
import { ApiError, errorMessage } from "../api/client";
import { formatValue } from "../charts/chart";
import { fetchRunEvaluation } from "./api";
import { normalizeEvaluation, type NormalizedEvaluation } from "./evaluation";
import { RegressionScatter, SampleGrid } from "./EvaluationPredictions";
import { ConfusionMatrix, PerClassTable } from "./EvaluationScores";

type Loaded = { evaluation: NormalizedEvaluation } | { missing: string } | { error: string } | null;

// The worker stores the evaluation as the run finishes; a page that asks a moment too early polls.
const POLL_MS = 2000;
const MAX_POLLS = 15;

export function EvaluationSection({ runId }: { runId: number }) {
  const [loaded, setLoaded] = useState<Loaded>(null);

  useEffect(() => {
    let cancelled = false;
    let timer: ReturnType<typeof setTimeout> | null = null;
    let polls = 0;
    const load = () => {
      fetchRunEvaluation(runId)
        .then((raw) => {
          if (cancelled) return;
          const state = raw?.state ?? "ready";
          if (state === "ready") setLoaded({ evaluation: normalizeEvaluation(raw ?? {}) });
          else if (state === "failed") setLoaded({ error: raw.error ?? "the evaluation failed" });
          else {
            setLoaded({ missing: raw.reason ?? "No evaluation for this run." });
            if (polls++ < MAX_POLLS && (state === "pending" || /no stored evaluation/.test(raw.reason ?? ""))) {
              timer = setTimeout(load, POLL_MS);
            }
          }
        })
        .catch((error) => {
          if (cancelled) return;
          if (error instanceof ApiError && error.status === 404 && error.code === "404") {
            setLoaded({ missing: "This server does not provide run evaluations." });
          } else setLoaded({ error: errorMessage(error) });
        });
    };
    load();
    return () => {
      cancelled = true;
      if (timer) clearTimeout(timer);
    };
  }, [runId]);

  return (
    <section className="card evaluation" data-testid="evaluation">
      <h2>Evaluation <span className="muted small">on the validation split</span></h2>
      {loaded === null && <div className="muted">Loading the evaluation…</div>}
      {loaded && "missing" in loaded && <div className="muted">{loaded.missing}</div>}
      {loaded && "error" in loaded && <div className="error-box" role="alert">Could not evaluate the model: {loaded.error}</div>}
      {loaded && "evaluation" in loaded && <EvaluationBody evaluation={loaded.evaluation} />}
    </section>
  );
}

function EvaluationBody({ evaluation }: { evaluation: NormalizedEvaluation }) {
  const empty = !evaluation.confusion && !evaluation.perClass.length && !evaluation.samples.length && !evaluation.regression;
  return (
    <>
      {evaluation.summary.length > 0 && (
        <div className="summary-row">
          {evaluation.summary.map(([name, value]) => (
            <span key={name} className="stat"><span className="muted">{name}</span> <strong>{formatValue(value)}</strong></span>
          ))}
        </div>
      )}
      {empty && <div className="muted">The evaluation holds nothing to show for this run.</div>}
      <div className="evaluation-grid">
        {evaluation.confusion && <ConfusionMatrix matrix={evaluation.confusion} classNames={evaluation.classNames} />}
        {evaluation.perClass.length > 0 && <PerClassTable evaluation={evaluation} />}
      </div>
      {evaluation.regression && <RegressionScatter actual={evaluation.regression.actual} predicted={evaluation.regression.predicted} />}
      {evaluation.samples.length > 0 && <SampleGrid samples={evaluation.samples} />}
    </>
  );
}
