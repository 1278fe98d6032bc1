import { describe, expect, it } from "vitest";
import served from "../../../tests/fixtures/training_options_schema.json";
import { ApiError } from "../api/client";
import { buildRequest, defaultForm, fieldErrors, monitorChoices, stepsPerEpoch, type TrainForm } from "./trainConfig";
import type { TrainingOptionsSchema } from "./trainingOptions";

const schema = served as unknown as TrainingOptionsSchema;
const form = (changes: Partial<TrainForm> = {}, options: Record<string, string | boolean> = {}): TrainForm => {
  const base = defaultForm(schema, "1");
  return { ...base, ...changes, options: { ...base.options, ...options } };
};

describe("defaultForm", () => {
  it("starts from the schema's defaults", () => {
    const base = defaultForm(schema, "1");
    expect(base.options).toMatchObject({ epochs: "10", batch_size: "32", validation_fraction: "0.2", seed: "0", device: "cpu", workers: "1", staleness: "" });
    expect([base.optimizer, base.learningRate]).toEqual(["adam", "0.001"]);
    expect(base.stopping).toEqual({ monitor: "val_loss", patience: "5", min_delta: "0", restore_best: true });
  });

  it("takes a template's recommended settings", () => {
    const recommended = defaultForm(schema, "1", { train: { epochs: 30, batch_size: 16, optimizer: { name: "momentum", lr: 0.05, momentum: 0.8 } } });
    expect([recommended.options.epochs, recommended.options.batch_size]).toEqual(["30", "16"]);
    expect([recommended.optimizer, recommended.learningRate, recommended.optimizerOptions]).toEqual(["momentum", "0.05", { momentum: "0.8" }]);
    expect(recommended.learningRateEdited).toBe(false);
  });
});

describe("buildRequest", () => {
  it("sends the learning rate and only the options changed from the engine's defaults", () => {
    const request = buildRequest(schema, form({ learningRate: "0.003", optimizerOptions: { beta1: "0.9", weight_decay: "0.0001" } }), 1000);
    expect(request.errors).toEqual({});
    expect(request.hyperparameters).toEqual({
      epochs: 10, batch_size: 32, validation_fraction: 0.2, seed: 0,
      optimizer: { name: "adam", lr: 0.003, weight_decay: 0.0001 },
    });
    expect([request.device, request.workers]).toEqual(["cpu", 1]);
  });

  it("proposes schedule lengths from the dataset's size", () => {
    const request = buildRequest(schema, form({ schedule: "warmup", then: "cosine" }, { epochs: "3", batch_size: "100" }), 1000);
    // 1000 rows, 200 for validation: 8 steps per epoch, 24 in all.
    expect(request.hyperparameters.optimizer).toEqual({
      name: "adam", lr: 0.001,
      schedule: { name: "warmup", warmup_steps: 8, then: { name: "cosine", total_steps: 16 } },
    });
  });

  it("names a schedule length it cannot propose, as the engine does", () => {
    expect(buildRequest(schema, form({ schedule: "cosine" }), null).errors).toEqual({
      "optimizer.schedule.total_steps": "optimizer.schedule is missing required option 'total_steps'",
    });
  });

  it("adds early stopping with the mode its metric implies", () => {
    const request = buildRequest(schema, form({ earlyStopping: true, stopping: { monitor: "val_accuracy", patience: "3", min_delta: "0", restore_best: true } }), null);
    expect(request.hyperparameters.early_stopping).toEqual({ monitor: "val_accuracy", patience: 3, min_delta: 0, mode: "max", restore_best: true });
  });

  it("refuses what the engine refuses, with its messages, on the fields it names", () => {
    expect(buildRequest(schema, form({}, { epochs: "2.5" }), null).errors).toEqual({ epochs: "epochs must be an integer, got 2.5" });
    expect(buildRequest(schema, form({ learningRate: "0" }), null).errors).toEqual({ "optimizer.lr": "optimizer.lr must be > 0, got 0" });
    expect(buildRequest(schema, form({}, { epochs: "" }), null).errors).toEqual({ epochs: "epochs must be an integer, got null" });
    const stopping = form({ earlyStopping: true, stopping: { monitor: "val_loss", patience: "0", min_delta: "0", restore_best: true } });
    expect(buildRequest(schema, stopping, null).errors).toEqual({ "early_stopping.patience": "early_stopping.patience must be a positive integer, got 0" });
    expect(buildRequest(schema, form({}, { workers: "0" }), null).errors).toEqual({ workers: "workers must be an integer from 1 to 64, got 0" });
  });
});

describe("stepsPerEpoch and monitors", () => {
  it("counts the last, smaller batch", () => {
    expect(stepsPerEpoch(1797, 0.2, 32)).toBe(45);
    expect(stepsPerEpoch(null, 0.2, 32)).toBeNull();
  });

  it("offers the task's default metrics to early stopping", () => {
    expect(monitorChoices(schema, "binary")).toEqual(["val_loss", "val_accuracy", "val_roc_auc", "loss", "accuracy", "roc_auc"]);
  });
});

describe("fieldErrors", () => {
  it("puts each server error on the field its path names", () => {
    const error = new ApiError(400, "invalid", "hyperparameters.epochs: epochs must be a positive integer", {
      "hyperparameters.epochs": ["epochs must be a positive integer, got -5"],
      "hyperparameters.optimizer.schedule.total_steps": ["optimizer.schedule.total_steps must be a positive integer, got 0"],
      dataset: ["graph input 'x' expects per-sample shape [64]"],
      graph_version: ["not in this project"],
    });
    expect(fieldErrors(error)).toEqual({
      epochs: "epochs must be a positive integer, got -5",
      "optimizer.schedule.total_steps": "optimizer.schedule.total_steps must be a positive integer, got 0",
      dataset: "graph input 'x' expects per-sample shape [64]",
      form: "not in this project",
    });
    expect(fieldErrors(new ApiError(500, "500", "server error"))).toEqual({ form: "server error" });
  });
});

describe("distributed training options", () => {
  it("sends the strategy only for more than one worker", () => {
    expect(buildRequest(schema, form({}, { workers: "1", strategy: "ps" }), 100).hyperparameters.strategy).toBeUndefined();
    expect(buildRequest(schema, form({}, { workers: "4", strategy: "ps" }), 100).hyperparameters.strategy).toBe("ps");
    expect(buildRequest(schema, form({}, { workers: "2" }), 100).hyperparameters.strategy).toBe("allreduce");
  });

  it("makes the parameter server asynchronous with a staleness bound", () => {
    const ps = { workers: "2", strategy: "ps" };
    expect(buildRequest(schema, form({}, ps), 100).hyperparameters.staleness).toBeUndefined();
    expect(buildRequest(schema, form({}, { ...ps, staleness: "2" }), 100).hyperparameters.staleness).toBe(2);
    expect(buildRequest(schema, form({}, { ...ps, strategy: "allreduce", staleness: "2" }), 100).hyperparameters.staleness).toBeUndefined();
    expect(buildRequest(schema, form({}, { ...ps, staleness: "1.5" }), 100).errors).toEqual({ staleness: "staleness must be an integer, got 1.5" });
  });
});

describe("image augmentation and normalization", () => {
  it("are fields of the form, sent only when changed, checked as the engine checks them", () => {
    const base = defaultForm(schema, "1");
    expect(base.options).toMatchObject({ random_crop_padding: "0", horizontal_flip: false, normalize: "none" });
    expect(buildRequest(schema, base, 1000).hyperparameters).not.toHaveProperty("horizontal_flip");
    const request = buildRequest(schema, form({}, { random_crop_padding: "4", horizontal_flip: true, normalize: "per_channel" }), 1000);
    expect(request.errors).toEqual({});
    expect(request.hyperparameters).toMatchObject({ random_crop_padding: 4, horizontal_flip: true, normalize: "per_channel" });
    expect(buildRequest(schema, form({}, { random_crop_padding: "-1" }), 1000).errors).toEqual({
      random_crop_padding: "random_crop_padding must be an integer from 0 to 64, got -1",
    });
  });
});
