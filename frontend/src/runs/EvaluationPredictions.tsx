// The model's predictions on held-out rows: sample predictions (as images for image data), and
// true against predicted values for regression.
import { useEffect, useMemo, useRef, useState } from "react";
import { formatValue } from "../charts/chart";
import { pixelsToRgba, type PredictionSample } from "./evaluation";

const SAMPLE_PAGE = 48;

export function SampleGrid({ samples }: { samples: PredictionSample[] }) {
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

export function RegressionScatter({ actual, predicted }: { actual: number[]; predicted: number[] }) {
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
