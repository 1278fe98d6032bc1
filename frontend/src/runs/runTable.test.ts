import { describe, expect, it } from "vitest";
import type { Run } from "../api/types";
import { compareValues, matchesSearch, metricNamesOf, metricOrder, nextSort, runColumns, visibleRuns } from "./runTable";

function run(id: number, overrides: Partial<Run> = {}): Run {
  return {
    id, project: 1, graph_version: 1, graph_name: "main", graph_version_number: 1, dataset: 1, dataset_name: "digits",
    name: `r${id}`, hyperparameters: { epochs: 5, batch_size: 32, optimizer: { name: "adam", lr: 0.001 } }, device: "cpu", workers: 1,
    state: "succeeded", cancel_requested: false, attempt: 1, task_id: "", worker: "", created_by: "demo", created_at: `2025-01-0${id}T10:00:00Z`,
    started_at: null, finished_at: null, heartbeat_at: null, duration_seconds: null, epochs_completed: 5, steps_completed: 10, last_sequence: 10,
    final_metrics: {}, error: "", tags: [], notes: "", published: [], archived_at: null, parent: null, ...overrides,
  };
}

const ids = (runs: Run[]) => runs.map((item) => item.id);

describe("compareValues", () => {
  it("orders numbers by value, not as text", () => {
    expect([10, 9, 100].sort((a, b) => compareValues(a, b, false))).toEqual([9, 10, 100]);
    expect([10, 9, 100].sort((a, b) => compareValues(a, b, true))).toEqual([100, 10, 9]);
  });

  it("orders text alphabetically, whatever its case", () => {
    expect(["beta", "Alpha", "gamma"].sort((a, b) => compareValues(a, b, false))).toEqual(["Alpha", "beta", "gamma"]);
  });

  it("puts missing values and empty text last in either direction", () => {
    for (const descending of [false, true]) {
      const sorted = [null, 2, "", 1].sort((a, b) => compareValues(a, b, descending));
      expect(sorted.slice(0, 2)).toEqual(descending ? [2, 1] : [1, 2]);
      expect(sorted.slice(2)).toEqual(expect.arrayContaining([null, ""]));
    }
    expect(compareValues(null, "", false)).toBe(0);
  });
});

describe("matchesSearch", () => {
  const tagged = run(7, { name: "Wide MLP", notes: "lr sweep", tags: ["baseline"], dataset_name: "Iris", graph_name: "mlp",
    hyperparameters: { optimizer: { name: "sgd", lr: 0.1 } } });

  it("finds the text in the name, id, notes, dataset, graph, optimizer or a tag, ignoring case", () => {
    for (const text of ["wide", "7", "SWEEP", "iris", "mlp", "sgd", "baseline", "  Baseline  "]) {
      expect(matchesSearch(tagged, text), text).toBe(true);
    }
    expect(matchesSearch(tagged, "adam")).toBe(false);
    expect(matchesSearch(run(8), "wide")).toBe(false);
  });

  it("lets every run through a blank search", () => {
    expect(matchesSearch(tagged, "")).toBe(true);
    expect(matchesSearch(tagged, "   ")).toBe(true);
  });
});

describe("visibleRuns", () => {
  const runs = [
    run(1, { final_metrics: { val_accuracy: 0.91 }, hyperparameters: { optimizer: { name: "adam", lr: 0.01 } } }),
    run(2, { final_metrics: { val_accuracy: 0.97 }, hyperparameters: { optimizer: { name: "sgd", lr: 0.1 } }, tags: ["best"] }),
    run(3, { state: "running", hyperparameters: { optimizer: "adam" } }),
    run(4, { final_metrics: { val_accuracy: 0.85 }, state: "failed", hyperparameters: { optimizer: { name: "adam", lr: 0.003 } } }),
  ];
  const columns = runColumns(metricNamesOf(runs));

  it("sorts by a metric, runs without it last whichever way", () => {
    expect(ids(visibleRuns(runs, "", columns, { key: "metric:val_accuracy", descending: true }))).toEqual([2, 1, 4, 3]);
    expect(ids(visibleRuns(runs, "", columns, { key: "metric:val_accuracy", descending: false }))).toEqual([4, 1, 2, 3]);
  });

  it("sorts by learning rate as a number, and states in their lifecycle order", () => {
    expect(ids(visibleRuns(runs, "", columns, { key: "lr", descending: false }))).toEqual([4, 1, 2, 3]);
    expect(ids(visibleRuns(runs, "", columns, { key: "state", descending: false }))).toEqual([3, 1, 2, 4]);
  });

  it("sorts newest first by creation time, and by the first column for a key it does not know", () => {
    expect(ids(visibleRuns(runs, "", columns, { key: "created", descending: true }))).toEqual([4, 3, 2, 1]);
    expect(ids(visibleRuns(runs, "", columns, { key: "metric:gone", descending: true }))).toEqual([4, 3, 2, 1]); // by name, r4 first
  });

  it("filters before sorting and leaves the given list as it was", () => {
    const given = [...runs];
    expect(ids(visibleRuns(runs, "adam", columns, { key: "lr", descending: true }))).toEqual([1, 4, 3]);
    expect(ids(visibleRuns(runs, "BEST", columns, { key: "name", descending: false }))).toEqual([2]);
    expect(visibleRuns(runs, "no such run", columns, { key: "name", descending: false })).toEqual([]);
    expect(runs).toEqual(given);
  });
});

describe("columns", () => {
  it("add one numeric column per reported final metric, loss first, counters left out", () => {
    const runs = [run(1, { final_metrics: { val_accuracy: 0.9, accuracy: 0.95, steps: 100, status: "done" as unknown as number } }),
      run(2, { final_metrics: { val_loss: 0.3, loss: 0.2, best_epoch: 3 } })];
    expect(metricNamesOf(runs)).toEqual(["loss", "val_loss", "accuracy", "val_accuracy"]);
    const metric = runColumns(["loss"]).find((column) => column.key === "metric:loss")!;
    expect(metric.numeric).toBe(true);
    expect(metric.value(run(3, { final_metrics: { loss: Number.NaN } }))).toBeNull();
  });

  it("puts each metric before its validation twin and loss before all", () => {
    expect(["val_accuracy", "accuracy", "val_loss", "loss"].sort(metricOrder)).toEqual(["loss", "val_loss", "accuracy", "val_accuracy"]);
  });
});

describe("nextSort", () => {
  it("flips the direction on the same column and starts numbers high to low, text A to Z", () => {
    expect(nextSort({ key: "lr", descending: true }, { key: "lr", numeric: true })).toEqual({ key: "lr", descending: false });
    expect(nextSort({ key: "created", descending: true }, { key: "lr", numeric: true })).toEqual({ key: "lr", descending: true });
    expect(nextSort({ key: "lr", descending: true }, { key: "name" })).toEqual({ key: "name", descending: false });
  });
});
