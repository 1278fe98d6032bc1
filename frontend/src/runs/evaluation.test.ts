import { describe, expect, it } from "vitest";
import { normalizeEvaluation, pixelsToRgba, scoresFromConfusion } from "./evaluation";

describe("normalizeEvaluation", () => {
  it("names classes and derives per-class scores from the confusion matrix when they are missing", () => {
    const evaluation = normalizeEvaluation({
      confusion_matrix: [[8, 2], [1, 9]],
      class_names: ["cat", "dog"],
      samples: [{ index: 3, true: 0, predicted: 1, confidence: 0.7, image: "data:image/png;base64,AA" }],
      accuracy: 0.85,
    });
    expect(evaluation.classNames).toEqual(["cat", "dog"]);
    expect(evaluation.perClass[0]).toMatchObject({ name: "cat", precision: 8 / 9, recall: 0.8, support: 10 });
    expect(evaluation.samples[0]).toMatchObject({ actual: "cat", predicted: "dog", correct: false, confidence: 0.7 });
    expect(evaluation.summary).toEqual([["accuracy", 0.85]]);
  });

  it("reads the worker's spelling: per-class entries, top classes and residual statistics", () => {
    const evaluation = normalizeEvaluation({
      state: "ready", kind: "classification", class_names: ["0", "1"], confusion_matrix: [[1, 0], [0, 1]],
      per_class: [{ class: 0, name: "0", precision: 1, recall: 1, f1: 1, support: 1 }],
      samples: [{ index: 5, true: 1, true_name: "1", predicted: 1, predicted_name: "1", correct: true, top: [{ class: 1, name: "1", probability: 0.9 }] }],
    });
    expect(evaluation.perClass).toEqual([{ name: "0", precision: 1, recall: 1, f1: 1, support: 1 }]);
    expect(evaluation.samples[0]).toMatchObject({ key: "5", actual: "1", predicted: "1", confidence: 0.9, correct: true });
    const regression = normalizeEvaluation({ pairs: { index: [0], true: [[1.5, 2]], predicted: [[1, 2]] }, residuals: { mae: 0.5, r2: null } });
    expect(regression.regression).toEqual({ actual: [1.5], predicted: [1] });
    expect(regression.summary).toEqual([["residual mae", 0.5]]);
  });

  it("reads regression pairs in either spelling", () => {
    expect(normalizeEvaluation({ pairs: [[1, 1.5], [2, 2.5]] }).regression).toEqual({ actual: [1, 2], predicted: [1.5, 2.5] });
    expect(normalizeEvaluation({ pairs: { true: [1], predicted: [2] } }).regression).toEqual({ actual: [1], predicted: [2] });
  });
});

describe("scoresFromConfusion", () => {
  it("leaves a score empty where its denominator is zero", () => {
    const [first, second] = scoresFromConfusion([[0, 0], [3, 1]], ["a", "b"]);
    expect(first.recall).toBeNull();
    expect(first.precision).toBe(0);
    expect(second.recall).toBe(0.25);
  });
});

describe("pixelsToRgba", () => {
  it("scales grey pixels to the 0-255 range", () => {
    const image = pixelsToRgba([[0, 8], [16, 4]]);
    expect(image.width).toBe(2);
    expect(Array.from(image.data.slice(0, 8))).toEqual([0, 0, 0, 255, 128, 128, 128, 255]);
  });
});
