// A classifier's scores on the held-out split: the confusion matrix as a heat map and precision,
// recall and F1 per class.
import { useState } from "react";
import type { NormalizedEvaluation } from "./evaluation";

export function ConfusionMatrix({ matrix, classNames }: { matrix: number[][]; classNames: string[] }) {
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

export function PerClassTable({ evaluation }: { evaluation: NormalizedEvaluation }) {
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
