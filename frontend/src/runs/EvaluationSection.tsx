// What the trained model does on the held-out split: confusion matrix, per-class precision and
// recall, sample predictions (as images for image data), or true against predicted for regression.
import { useEffect, useMemo, useRef, useState } from "react";
import { api, ApiError, errorMessage } from "../api/client";
import type { RunEvaluation } from "../api/types";
import { formatValue } from "../charts/chart";
import { normalizeEvaluation, pixelsToRgba, type NormalizedEvaluation, type PredictionSample } from "./evaluation";

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
      api<RunEvaluation>(`/api/runs/${runId}/evaluation`)
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

function ConfusionMatrix({ matrix, classNames }: { matrix: number[][]; classNames: string[] }) {
  const [normalized, setNormalized] = useState(true);
  const rowTotals = matrix.map((row) => row.reduce((sum, value) => sum + value, 0));
  const maximum = Math.max(1, ...matrix.flat());
  return (
    <div className="confusion">
      <div className="row">
        <h3>Confusion matrix</h3>
        <label className="inline small">
          <input type="checkbox" checked={normalized} onChange={(event) => setNormalized(event.target.checked)} />
          shade by row share
        </label>
      </div>
      <table className="heatmap" data-testid="confusion-matrix">
        <thead>
          <tr>
            <th className="corner" title="rows: true class, columns: predicted class">true \ pred</th>
            {classNames.map((name) => <th key={name} className="col-label" title={name}>{name}</th>)}
          </tr>
        </thead>
        <tbody>
          {matrix.map((row, i) => (
            <tr key={i}>
              <th title={classNames[i]}>{classNames[i]}</th>
              {row.map((value, j) => {
                const share = normalized ? (rowTotals[i] ? value / rowTotals[i] : 0) : value / maximum;
                return (
                  <td
                    key={j}
                    className={i === j ? "diagonal" : undefined}
                    style={{ background: heat(share, i === j), color: share > 0.55 ? "white" : undefined }}
                    title={`true ${classNames[i]}, predicted ${classNames[j]}: ${value}${rowTotals[i] ? ` (${(100 * value / rowTotals[i]).toFixed(1)}% of the row)` : ""}`}
                  >
                    {value}
                  </td>
                );
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function heat(share: number, diagonal: boolean): string {
  if (share <= 0) return "transparent";
  // Correct predictions in blue, mistakes in red, so the eye finds the confusions.
  return diagonal ? `rgba(37, 99, 235, ${0.1 + 0.9 * share})` : `rgba(220, 38, 38, ${0.1 + 0.9 * share})`;
}

function PerClassTable({ evaluation }: { evaluation: NormalizedEvaluation }) {
  const hasF1 = evaluation.perClass.some((score) => score.f1 !== null);
  const hasSupport = evaluation.perClass.some((score) => score.support !== null);
  return (
    <div>
      <h3>Per class</h3>
      <table className="data per-class" data-testid="per-class">
        <thead>
          <tr>
            <th>class</th><th className="num">precision</th><th className="num">recall</th>
            {hasF1 && <th className="num">F1</th>}
            {hasSupport && <th className="num">support</th>}
          </tr>
        </thead>
        <tbody>
          {evaluation.perClass.map((score) => (
            <tr key={score.name}>
              <td>{score.name}</td>
              <td className="num"><ScoreBar value={score.precision} /></td>
              <td className="num"><ScoreBar value={score.recall} /></td>
              {hasF1 && <td className="num">{score.f1 === null ? "—" : score.f1.toFixed(3)}</td>}
              {hasSupport && <td className="num">{score.support ?? "—"}</td>}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function ScoreBar({ value }: { value: number | null }) {
  if (value === null) return <span className="muted">—</span>;
  return (
    <span className="score-bar">
      <span className="score-fill" style={{ width: `${Math.round(value * 100)}%` }} />
      <span className="score-text">{value.toFixed(3)}</span>
    </span>
  );
}

const SAMPLE_PAGE = 48;

function SampleGrid({ samples }: { samples: PredictionSample[] }) {
  const [filter, setFilter] = useState<"all" | "wrong" | "right">("all");
  const [shown, setShown] = useState(SAMPLE_PAGE);
  const visible = samples.filter((sample) => filter === "all" || (filter === "wrong" ? sample.correct === false : sample.correct === true));
  const images = samples.some((sample) => sample.image || sample.pixels);
  return (
    <div>
      <div className="row">
        <h3>Sample predictions</h3>
        <select value={filter} onChange={(event) => setFilter(event.target.value as typeof filter)} aria-label="Which predictions">
          <option value="all">all ({samples.length})</option>
          <option value="wrong">mistakes ({samples.filter((sample) => sample.correct === false).length})</option>
          <option value="right">correct ({samples.filter((sample) => sample.correct === true).length})</option>
        </select>
      </div>
      {images ? (
        <div className="sample-grid" data-testid="prediction-samples">
          {visible.slice(0, shown).map((sample) => (
            <figure key={sample.key} className={`sample ${sample.correct === false ? "wrong" : sample.correct ? "right" : ""}`}>
              {sample.image ? <img src={sample.image} alt={`sample ${sample.key}`} /> : sample.pixels ? <PixelImage pixels={sample.pixels} /> : null}
              <figcaption>
                <span title="predicted">{sample.predicted}</span>
                {sample.correct === false && <span className="muted" title="true label"> ≠ {sample.actual}</span>}
                {sample.confidence !== null && <span className="muted small"> {(sample.confidence * 100).toFixed(0)}%</span>}
              </figcaption>
            </figure>
          ))}
        </div>
      ) : (
        <table className="data" data-testid="prediction-samples">
          <thead><tr><th>#</th><th>true</th><th>predicted</th><th className="num">confidence</th></tr></thead>
          <tbody>
            {visible.slice(0, shown).map((sample) => (
              <tr key={sample.key} className={sample.correct === false ? "wrong" : undefined}>
                <td>{sample.key}</td><td>{sample.actual}</td><td>{sample.predicted}</td>
                <td className="num">{sample.confidence === null ? "" : sample.confidence.toFixed(3)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {visible.length > shown && <button onClick={() => setShown(shown + SAMPLE_PAGE)}>Show more</button>}
    </div>
  );
}

function PixelImage({ pixels }: { pixels: number[][] | number[][][] }) {
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const image = useMemo(() => pixelsToRgba(pixels), [pixels]);
  useEffect(() => {
    const context = canvasRef.current?.getContext("2d");
    if (context && image.width && image.height) context.putImageData(new ImageData(new Uint8ClampedArray(image.data), image.width, image.height), 0, 0);
  }, [image]);
  return <canvas ref={canvasRef} width={image.width} height={image.height} className="pixelated" />;
}

function RegressionScatter({ actual, predicted }: { actual: number[]; predicted: number[] }) {
  const size = 320;
  const pad = 36;
  const values = [...actual, ...predicted].filter(Number.isFinite);
  const low = Math.min(...values);
  const high = Math.max(...values);
  const span = high > low ? high - low : 1;
  const scale = (value: number) => pad + ((value - low) / span) * (size - 2 * pad);
  const residuals = actual.map((value, i) => predicted[i] - value);
  const mae = residuals.reduce((sum, value) => sum + Math.abs(value), 0) / Math.max(1, residuals.length);
  return (
    <div>
      <h3>True against predicted <span className="muted small">({actual.length} rows, mean absolute error {formatValue(mae)})</span></h3>
      <svg width={size} height={size} className="scatter" data-testid="regression-scatter" role="img" aria-label="True against predicted values">
        <line x1={pad} y1={size - pad} x2={size - pad} y2={pad} className="diagonal" />
        {actual.map((value, i) => (
          <circle key={i} cx={scale(value)} cy={size - scale(predicted[i])} r={2.5}>
            <title>{`true ${formatValue(value)}, predicted ${formatValue(predicted[i])}`}</title>
          </circle>
        ))}
        <text x={size / 2} y={size - 6} textAnchor="middle">true</text>
        <text x={10} y={size / 2} textAnchor="middle" transform={`rotate(-90 10 ${size / 2})`}>predicted</text>
        <text x={pad} y={size - pad + 14} className="tick">{formatValue(low)}</text>
        <text x={size - pad} y={size - pad + 14} textAnchor="end" className="tick">{formatValue(high)}</text>
      </svg>
    </div>
  );
}
