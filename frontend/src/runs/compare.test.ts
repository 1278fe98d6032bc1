import { describe, expect, it } from "vitest";
import type { Run } from "../api/types";
import { compareFrame, compareRows, defaultCompareMetrics, shownCompareMetrics, toggleCompareMetric } from "./compare";

function run(id: number, overrides: Partial<Run> = {}): Run {
  return {
    id, project: 1, graph_version: 1, graph_name: "main", graph_version_number: 1, dataset: 1, dataset_name: "digits",
    name: `r${id}`, hyperparameters: { epochs: 5, optimizer: { name: "adam", lr: 0.001 } }, device: "cpu", workers: 1,
    state: "succeeded", cancel_requested: false, attempt: 1, task_id: "", worker: "", created_by: "demo", created_at: "", started_at: null,
    finished_at: null, heartbeat_at: null, duration_seconds: null, epochs_completed: 5, steps_completed: 10, last_sequence: 10,
    final_metrics: { val_loss: 0.2, status: "succeeded" as unknown as number }, error: "", tags: [], notes: "", published: [], archived_at: null, parent: null, ...overrides,
  };
}

describe("compareRows", () => {
  it("marks the rows whose values differ between runs", () => {
    const sections = compareRows([
      run(1),
      run(2, { hyperparameters: { epochs: 5, optimizer: { name: "sgd", lr: 0.1 } }, final_metrics: { val_loss: 0.3 } }),
    ]);
    const hyper = sections.find((section) => section.section === "Hyperparameters")!.rows;
    expect(hyper.find((row) => row.key === "epochs")!.differs).toBe(false);
    expect(hyper.find((row) => row.key === "optimizer.name")).toEqual({ key: "optimizer.name", values: ["adam", "sgd"], differs: true });
    const results = sections.find((section) => section.section === "Results")!.rows;
    expect(results.find((row) => row.key === "val_loss")!.values).toEqual([0.2, 0.3]);
    expect(results.some((row) => row.key === "status")).toBe(false);
  });
});

describe("compareFrame", () => {
  it("overlays one line per run that has the metric", () => {
    const series = { steps: [1, 2], epochs: [1, 2], values: [0.5, 0.4], wall_times: [10, 11], sequences: [1, 2], total: 2 };
    const frame = compareFrame(
      [{ run: run(1), series }, { run: run(2), series: { ...series, steps: [2, 3] } }, { run: run(3), series: undefined }],
      { xAxis: "step", smoothing: 0, logScale: false },
    );
    expect(frame.count).toBe(2);
    expect(frame.lines.map((line) => line.label)).toEqual(["r1 (#1)", "r2 (#2)"]);
    expect(Array.from(frame.data[0])).toEqual([1, 2, 3]);
  });
});

describe("the compared metrics", () => {
  const metrics = ["accuracy", "loss", "system/rss_mb", "val_accuracy", "val_loss"];

  it("open with the validation loss, else the loss, else the first", () => {
    expect(defaultCompareMetrics(metrics)).toEqual(["val_loss"]);
    expect(defaultCompareMetrics(["accuracy", "loss"])).toEqual(["loss"]);
    expect(defaultCompareMetrics(["r2"])).toEqual(["r2"]);
    expect(defaultCompareMetrics([])).toEqual([]);
  });

  it("are several at once, in the order of the metrics, and fall back to the default when none is left", () => {
    const two = toggleCompareMetric(["val_loss"], "accuracy");
    expect(shownCompareMetrics(two, metrics)).toEqual(["accuracy", "val_loss"]);
    expect(shownCompareMetrics(toggleCompareMetric(two, "val_loss"), metrics)).toEqual(["accuracy"]);
    expect(shownCompareMetrics([], metrics)).toEqual(["val_loss"]);
    expect(shownCompareMetrics(["gone"], metrics)).toEqual(["val_loss"]); // a metric these runs do not have
    expect(shownCompareMetrics(null, metrics)).toEqual(["val_loss"]);
  });

  it("line up by epoch or by time since each run's start", () => {
    const history = (steps: number[], epochs: number[], walls: number[]) => ({
      steps, epochs, values: steps.map((step) => 1 / step), wall_times: walls, sequences: steps, total: steps.length,
    });
    const curves = [
      { run: run(1), series: history([10, 20], [1, 2], [1000, 1004]) },
      { run: run(2), series: history([5, 10], [1, 2], [2000, 2001]) },
    ];
    const byEpoch = compareFrame(curves, { xAxis: "epoch", smoothing: 0, logScale: false });
    expect(Array.from(byEpoch.data[0])).toEqual([1, 2]);
    const byTime = compareFrame(curves, { xAxis: "wall", smoothing: 0, logScale: false });
    expect(Array.from(byTime.data[0])).toEqual([0, 1, 4]);
    expect(byTime.count).toBe(2);
  });
});
