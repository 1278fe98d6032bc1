import { describe, expect, it } from "vitest";
import type { Run } from "../api/types";
import { compareFrame, compareRows } from "./compare";

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
