import { describe, expect, it } from "vitest";
import type { EditorDocument, OpSchema, SweepDetail } from "../api/types";
import type { TrainingOptionsSchema } from "../runs/trainingOptions";
import {
  axesOf, axisPosition, buildParameters, buildSweepSettings, candidateParameters, defaultSweepForm, formatValue,
  importanceBars, parseChoices, rowFor, trialCounts, trialLines,
} from "./sweepLogic";

const schema = {
  format: "netforge.training_options/1",
  options: [
    { name: "epochs", type: "int", label: "Epochs", doc: "", required: true, default: 10, group: "data", scope: "trainer" },
    { name: "batch_size", type: "int", label: "Batch size", doc: "", required: true, default: 32, group: "data", scope: "trainer" },
    { name: "dtype", type: "choice", label: "Dtype", doc: "", required: true, choices: ["float32", "float64"], group: "advanced", scope: "trainer" },
    { name: "workers", type: "int", label: "Workers", doc: "", required: true, default: 1, group: "where", scope: "run" },
    { name: "optimizer", type: "optimizer", label: "Optimizer", doc: "", required: true, group: "", scope: "trainer" },
  ],
  optimizers: [{ name: "adam", label: "Adam", doc: "", params: [{ name: "lr", type: "float", label: "Learning rate", doc: "", required: true, default: 0.001, group: "", scope: "trainer" }] },
    { name: "sgd", label: "SGD", doc: "", params: [] }],
  schedules: [], early_stopping: [], metrics: [], reserved: {},
} as unknown as TrainingOptionsSchema;

const ops = [{ name: "dense", params: [{ name: "units", type: "int", default: 32 }, { name: "use_bias", type: "bool" }] },
  { name: "dropout", params: [{ name: "rate", type: "float", default: 0.5 }] }] as unknown as OpSchema[];

const document = {
  format: "netforge.editor/1", edges: [],
  nodes: [{ id: "fc1", type: "dense", position: { x: 0, y: 0 }, data: { params: { units: 64 } } },
    { id: "drop", type: "dropout", position: { x: 0, y: 0 }, data: { params: {} } },
    { id: "x", type: "input", position: { x: 0, y: 0 }, data: { name: "x" } }],
} as EditorDocument;

describe("candidateParameters", () => {
  it("offers the trainer's numeric and choice options, the optimizer's and the nodes' parameters, around their values", () => {
    const candidates = candidateParameters(schema, "adam", { optimizer: { name: "adam", lr: 0.01 }, batch_size: 32 }, document, ops);
    const byName = Object.fromEntries(candidates.map((candidate) => [candidate.name, candidate]));
    expect(Object.keys(byName)).toEqual(["epochs", "batch_size", "dtype", "optimizer.lr", "optimizer.name", "node:fc1.units", "node:drop.rate"]);
    expect(byName["optimizer.lr"]).toMatchObject({ type: "float", low: 0.001, high: 0.1, log: true });
    expect(byName["batch_size"]).toMatchObject({ type: "int", low: 8, high: 128 });
    expect(byName["node:fc1.units"]).toMatchObject({ type: "int", low: 16, high: 256, label: "fc1 units" });
    expect(byName["optimizer.name"].choices).toEqual(["adam", "sgd"]);
    expect(byName["workers"]).toBeUndefined(); // how the platform runs it, not a trainer option
  });
});

describe("buildParameters", () => {
  it("turns rows into the API's search space", () => {
    const rows = [rowFor({ name: "optimizer.lr", label: "", type: "float", low: 0.001, high: 0.1, log: true }),
      { ...rowFor({ name: "node:fc1.units", label: "", type: "choice", choices: [16, 32] }), choices: "16, 32, 64" }];
    expect(buildParameters(rows)).toEqual({
      parameters: [{ name: "optimizer.lr", type: "float", low: 0.001, high: 0.1, log: true },
        { name: "node:fc1.units", type: "choice", choices: [16, 32, 64] }],
      errors: {},
    });
  });

  it("names the row and field of each problem, in the API's words", () => {
    const { errors } = buildParameters([
      { name: "epochs", type: "int", low: "2.5", high: "1", log: false, choices: "" },
      { name: "optimizer.lr", type: "float", low: "0", high: "1", log: true, choices: "" },
      { name: "epochs", type: "choice", low: "", high: "", log: false, choices: " , " },
      { name: "", type: "float", low: "", high: "", log: false, choices: "" },
    ]);
    expect(errors).toEqual({
      "parameters[0].low": "'low' of an int range must be a whole number",
      "parameters[0].high": "'low' (2.5) must be below 'high' (1)",
      "parameters[1].low": "a log range must be above 0, got low 0",
      "parameters[2].name": "'epochs' appears twice",
      "parameters[2].choices": "List the values to try, separated by commas",
      "parameters[3].name": "Choose what to vary",
    });
    expect(buildParameters([]).errors).toEqual({ parameters: "Add at least one parameter to search" });
  });

  it("reads choices as numbers, booleans, null and text", () => {
    expect(parseChoices("16, 0.5, true, false, null, adam")).toEqual([16, 0.5, true, false, null, "adam"]);
  });
});

describe("buildSweepSettings", () => {
  it("checks the budget and the parallelism", () => {
    expect(buildSweepSettings(defaultSweepForm())).toEqual({ settings: { sampler: "tpe", trial_budget: 8, parallelism: 2, pruner: "none" }, errors: {} });
    expect(buildSweepSettings({ ...defaultSweepForm(), trialBudget: "0", parallelism: "1.5" }).errors).toEqual({
      trial_budget: "Trials must be a whole number of at least 1", parallelism: "At once must be a whole number of at least 1",
    });
  });
});

const trial = (number: number, params: Record<string, unknown>, value: number | null, state = "completed") => ({
  number, params, value, state, run: number + 10, run_name: "", run_state: "succeeded", epochs_completed: 3,
  pruned_at_epoch: null, error: "", created_at: "", finished_at: null,
});

const sweep = {
  metric: "val_loss", best_trial: 1,
  parameters: [{ name: "optimizer.lr", type: "float", low: 0.001, high: 0.1, log: true },
    { name: "batch_size", type: "choice", choices: [16, 32, 64] }],
  trials: [trial(0, { "optimizer.lr": 0.001, batch_size: 16 }, 0.9), trial(1, { "optimizer.lr": 0.01, batch_size: 64 }, 0.3),
    trial(2, { "optimizer.lr": 0.1, batch_size: 32 }, null, "active")],
} as unknown as SweepDetail;

describe("parallel coordinates", () => {
  it("has an axis per parameter (log, categories) and the objective last", () => {
    const axes = axesOf(sweep);
    expect(axes.map((axis) => [axis.name, axis.kind])).toEqual([["optimizer.lr", "log"], ["batch_size", "category"], ["val_loss", "linear"]]);
    expect(axisPosition(axes[0], 0.01)).toBeCloseTo(0.5);
    expect(axisPosition(axes[1], 32)).toBe(0.5);
    expect(axisPosition(axes[1], 128)).toBeNull();
    expect([axisPosition(axes[2], 0.3), axisPosition(axes[2], 0.9), axisPosition(axes[2], null)]).toEqual([0, 1, null]);
  });

  it("draws each trial across the axes, the best one last, a trial without a value stopping short", () => {
    const lines = trialLines(sweep, axesOf(sweep), 200, 100);
    expect(lines.map((line) => [line.number, line.best])).toEqual([[0, false], [2, false], [1, true]]);
    expect(lines[2].points).toEqual([[0, 50], [100, 0], [200, 100]]);
    expect(lines[1].points).toEqual([[0, 0], [100, 50]]); // still training: no objective yet
  });

  it("formats tick values briefly", () => {
    expect([formatValue(0.001), formatValue(1.23456e-5), formatValue(128), formatValue(0.123456), formatValue(null)])
      .toEqual(["0.001", "1.23e-5", "128", "0.1235", "—"]);
  });
});

describe("importance and counts", () => {
  it("sorts importance bars by share", () => {
    expect(importanceBars({ batch_size: 0.2, "optimizer.lr": 0.8 })).toEqual([{ name: "optimizer.lr", share: 0.8 }, { name: "batch_size", share: 0.2 }]);
  });

  it("counts trials by state in reading order", () => {
    expect(trialCounts(sweep.trials)).toEqual([{ state: "active", count: 1 }, { state: "completed", count: 2 }]);
  });
});
