// The evaluation of a finished run (GET /api/runs/<id>/evaluation) in one shape for the page,
// whatever spelling the server uses for classes, per-class scores, samples and regression pairs.
import type { EvaluationSample, RunEvaluation } from "../api/types";

export interface ClassScore {
  name: string;
  precision: number | null;
  recall: number | null;
  f1: number | null;
  support: number | null;
}

export interface PredictionSample {
  key: string;
  image: string | null;
  pixels: number[][] | number[][][] | null;
  actual: string;
  predicted: string;
  confidence: number | null;
  correct: boolean | null;
}

export interface NormalizedEvaluation {
  classNames: string[];
  confusion: number[][] | null;
  perClass: ClassScore[];
  samples: PredictionSample[];
  regression: { actual: number[]; predicted: number[] } | null;
  /** Other top-level numbers (accuracy, rows, mse, ...). */
  summary: [string, number][];
}

export function normalizeEvaluation(raw: RunEvaluation): NormalizedEvaluation {
  const confusion = isMatrix(raw.confusion_matrix) ? raw.confusion_matrix : null;
  const names = raw.class_names ?? raw.label_names ?? [];
  const classCount = confusion?.length ?? names.length;
  const classNames = Array.from({ length: classCount }, (_, i) => names[i] ?? String(i));
  const nameOf = (label: unknown, name?: string): string => {
    if (name) return name;
    if (typeof label === "number" && Number.isInteger(label) && classNames[label] !== undefined) return classNames[label];
    if (typeof label === "number") return String(+label.toPrecision(5));
    return label === undefined || label === null ? "" : String(label);
  };

  let perClass: ClassScore[] = [];
  if (Array.isArray(raw.per_class) && raw.per_class.length) {
    perClass = raw.per_class.map((entry, i) => ({
      name: String(entry.name ?? entry.label ?? (typeof entry.class === "number" ? classNames[entry.class] ?? entry.class : entry.class) ?? classNames[i] ?? i),
      precision: numberOrNull(entry.precision),
      recall: numberOrNull(entry.recall),
      f1: numberOrNull(entry.f1),
      support: numberOrNull(entry.support),
    }));
  } else if (Array.isArray(raw.precision) || Array.isArray(raw.recall)) {
    perClass = classNames.map((name, i) => ({
      name,
      precision: numberOrNull(raw.precision?.[i]),
      recall: numberOrNull(raw.recall?.[i]),
      f1: numberOrNull(raw.f1?.[i]),
      support: numberOrNull(raw.support?.[i]),
    }));
  } else if (confusion) {
    perClass = scoresFromConfusion(confusion, classNames);
  }

  const samples = (Array.isArray(raw.samples) ? raw.samples : []).map((sample: EvaluationSample, i): PredictionSample => {
    const actualLabel = sample.true ?? sample.label;
    const predictedLabel = sample.predicted ?? sample.prediction;
    const actual = nameOf(actualLabel, sample.true_name ?? sample.label_name);
    const predicted = nameOf(predictedLabel, sample.predicted_name);
    return {
      key: String(sample.index ?? i),
      image: typeof sample.image === "string" ? sample.image : null,
      pixels: Array.isArray(sample.pixels) ? sample.pixels : null,
      actual,
      predicted,
      confidence: numberOrNull(sample.confidence ?? sample.probability ?? sample.top?.[0]?.probability),
      correct: typeof sample.correct === "boolean" ? sample.correct : actual && predicted ? actual === predicted : null,
    };
  });

  let regression: NormalizedEvaluation["regression"] = null;
  if (Array.isArray(raw.pairs)) {
    regression = { actual: raw.pairs.map((pair) => pair[0]), predicted: raw.pairs.map((pair) => pair[1]) };
  } else if (raw.pairs && typeof raw.pairs === "object" && Array.isArray(raw.pairs.true)) {
    // Several outputs per row come as lists: the first output is drawn.
    const first = (value: number | number[]) => (Array.isArray(value) ? value[0] : value);
    regression = { actual: raw.pairs.true.map(first), predicted: raw.pairs.predicted.map(first) };
  } else if (Array.isArray(raw.y_true) && Array.isArray(raw.y_pred)) {
    regression = { actual: raw.y_true, predicted: raw.y_pred };
  }

  const residuals = raw.residuals && typeof raw.residuals === "object"
    ? Object.entries(raw.residuals).filter((entry): entry is [string, number] => typeof entry[1] === "number").map(([name, value]): [string, number] => [`residual ${name}`, value])
    : [];
  const summary = [...Object.entries(raw).filter((entry): entry is [string, number] => typeof entry[1] === "number"), ...residuals];
  return { classNames, confusion, perClass, samples, regression, summary };
}

/** Precision per predicted column and recall per true row of a confusion matrix (rows: true class). */
export function scoresFromConfusion(matrix: number[][], classNames: string[]): ClassScore[] {
  return matrix.map((row, i) => {
    const truePositives = row[i] ?? 0;
    const support = row.reduce((sum, value) => sum + value, 0);
    const predictedCount = matrix.reduce((sum, other) => sum + (other[i] ?? 0), 0);
    const precision = predictedCount ? truePositives / predictedCount : null;
    const recall = support ? truePositives / support : null;
    const f1 = precision !== null && recall !== null && precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : null;
    return { name: classNames[i] ?? String(i), precision, recall, f1, support };
  });
}

/** Grey or RGB pixels as RGBA bytes, scaled from their own minimum and maximum. */
export function pixelsToRgba(pixels: number[][] | number[][][]): { width: number; height: number; data: Uint8ClampedArray } {
  const channels: number[][][] = Array.isArray(pixels[0]?.[0]) ? (pixels as number[][][]) : [pixels as number[][]];
  const height = channels[0].length;
  const width = channels[0][0]?.length ?? 0;
  let low = Infinity;
  let high = -Infinity;
  for (const channel of channels) for (const row of channel) for (const value of row) {
    if (value < low) low = value;
    if (value > high) high = value;
  }
  const scale = high > low ? 255 / (high - low) : 0;
  const data = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const offset = (y * width + x) * 4;
      for (let c = 0; c < 3; c++) {
        const channel = channels[channels.length === 3 ? c : 0];
        data[offset + c] = (channel[y][x] - low) * scale;
      }
      data[offset + 3] = 255;
    }
  }
  return { width, height, data };
}

function isMatrix(value: unknown): value is number[][] {
  return Array.isArray(value) && value.every((row) => Array.isArray(row));
}

function numberOrNull(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}
