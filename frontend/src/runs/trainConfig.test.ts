import { describe, expect, it } from "vitest";
import { ApiError } from "../api/client";
import { buildHyperparameters, defaultForm, fieldErrors, FormError, stepsPerEpoch } from "./trainConfig";

describe("buildHyperparameters", () => {
  it("sends the learning rate and only the options changed from the engine's defaults", () => {
    const form = { ...defaultForm("1"), optimizer: "adam", learningRate: "0.003", optimizerOptions: { beta1: "0.9", weight_decay: "0.0001" } };
    expect(buildHyperparameters(form, 1000)).toEqual({
      epochs: 10, batch_size: 32, validation_fraction: 0.2, seed: 0,
      optimizer: { name: "adam", lr: 0.003, weight_decay: 0.0001 },
    });
  });

  it("proposes schedule lengths from the dataset's size", () => {
    const form = { ...defaultForm("1"), schedule: "warmup", then: "cosine", epochs: "3", batchSize: "100" };
    // 1000 rows, 200 for validation: 8 steps per epoch, 24 in all.
    expect(buildHyperparameters(form, 1000).optimizer).toEqual({
      name: "adam", lr: 0.001,
      schedule: { name: "warmup", warmup_steps: 8, then: { name: "cosine", total_steps: 16 } },
    });
  });

  it("adds early stopping with the mode its metric implies", () => {
    const form = { ...defaultForm("1"), earlyStopping: true, monitor: "val_accuracy", patience: "3" };
    expect(buildHyperparameters(form, null).early_stopping).toEqual({
      monitor: "val_accuracy", patience: 3, min_delta: 0, mode: "max", restore_best: true,
    });
  });

  it("names the field that is not a number", () => {
    expect(() => buildHyperparameters({ ...defaultForm("1"), epochs: "2.5" }, null)).toThrow(FormError);
    try {
      buildHyperparameters({ ...defaultForm("1"), learningRate: "fast" }, null);
    } catch (error) {
      expect((error as FormError).field).toBe("optimizer.lr");
    }
  });
});

describe("stepsPerEpoch", () => {
  it("counts the last, smaller batch", () => {
    expect(stepsPerEpoch(1797, 0.2, 32)).toBe(45);
    expect(stepsPerEpoch(null, 0.2, 32)).toBeNull();
  });
});

describe("fieldErrors", () => {
  it("puts each server error on the field it names", () => {
    const error = new ApiError(400, "invalid", "hyperparameters.epochs: epochs must be a positive integer", {
      "hyperparameters.epochs": ["epochs must be a positive integer, got -5"],
      "hyperparameters.optimizer": ["adam: 'lr' must be > 0, got -1.0"],
      dataset: ["graph input 'x' expects per-sample shape [64]"],
    });
    expect(fieldErrors(error)).toEqual({
      epochs: "epochs must be a positive integer, got -5",
      "optimizer.lr": "adam: 'lr' must be > 0, got -1.0",
      dataset: "graph input 'x' expects per-sample shape [64]",
    });
  });

  it("routes schedule errors to the schedule and keeps unplaceable errors for the form", () => {
    expect(fieldErrors(new ApiError(400, "invalid", "x", { "hyperparameters.optimizer": ["cosine schedule: 'total_steps' must be >= 1"] })))
      .toEqual({ "schedule.total_steps": "cosine schedule: 'total_steps' must be >= 1" });
    expect(fieldErrors(new ApiError(500, "500", "server error"))).toEqual({ form: "server error" });
  });
});

describe("distributed training options", () => {
  it("sends the strategy only for more than one worker", () => {
    expect(buildHyperparameters({ ...defaultForm("1"), workers: "1", strategy: "ps" }, 100).strategy).toBeUndefined();
    expect(buildHyperparameters({ ...defaultForm("1"), workers: "4", strategy: "ps" }, 100).strategy).toBe("ps");
    expect(buildHyperparameters({ ...defaultForm("1"), workers: "2" }, 100).strategy).toBe("allreduce");
  });

  it("makes the parameter server asynchronous with a staleness bound", () => {
    const form = { ...defaultForm("1"), workers: "2", strategy: "ps" as const };
    expect(buildHyperparameters(form, 100).staleness).toBeUndefined();
    expect(buildHyperparameters({ ...form, staleness: "2" }, 100).staleness).toBe(2);
    expect(buildHyperparameters({ ...form, strategy: "allreduce", staleness: "2" }, 100).staleness).toBeUndefined();
    expect(() => buildHyperparameters({ ...form, staleness: "1.5" }, 100)).toThrow(FormError);
  });
});
