import { describe, expect, it } from "vitest";
import served from "../../../tests/fixtures/training_options_schema.json";
import { formFromRun } from "./rerunForm";
import { buildRequest, defaultForm } from "./trainConfig";
import type { TrainingOptionsSchema } from "./trainingOptions";

const schema = served as unknown as TrainingOptionsSchema;

// What the API stores for a run (its validator fills the trainer options' defaults in).
const stored = {
  epochs: 3, batch_size: 48, validation_fraction: 0.25, seed: 11,
  optimizer: { name: "sgd", lr: 0.1, schedule: { name: "warmup", warmup_steps: 5, then: { name: "cosine", total_steps: 50 } } },
  early_stopping: { monitor: "val_accuracy", patience: 2, mode: "max" },
  metrics: null, standardize: true, standardize_target: true, dtype: "float32", drop_last: false, train_metrics: true,
  random_crop_padding: 0, horizontal_flip: true, normalize: "none",
};

describe("formFromRun", () => {
  it("starting it unchanged asks for the run's training again", () => {
    const form = formFromRun(schema, { dataset: 7, hyperparameters: stored, device: "cpu", workers: 1, tags: ["a", "b"] });
    expect([form.dataset, form.tags, form.options.seed, form.optimizer, form.learningRate]).toEqual(["7", "a, b", "11", "sgd", "0.1"]);
    const request = buildRequest(schema, form, 1000);
    expect(request.errors).toEqual({});
    expect(request.hyperparameters).toEqual({
      epochs: 3, batch_size: 48, validation_fraction: 0.25, seed: 11, horizontal_flip: true,
      optimizer: stored.optimizer,
      early_stopping: { monitor: "val_accuracy", patience: 2, min_delta: 0, mode: "max", restore_best: true },
    });
    expect([request.device, request.workers]).toEqual(["cpu", 1]);
  });

  it("takes a distributed run's workers and strategy, and any form it builds round-trips", () => {
    const base = defaultForm(schema, "3");
    const edited = { ...base, options: { ...base.options, epochs: "4", workers: "2", strategy: "ps", staleness: "1" }, learningRate: "0.01" };
    const first = buildRequest(schema, edited, 500);
    const again = formFromRun(schema, { dataset: 3, hyperparameters: first.hyperparameters, device: first.device, workers: first.workers as number, tags: [] });
    expect(buildRequest(schema, again, 500)).toEqual(first);
    expect([again.options.workers, again.options.strategy, again.options.staleness]).toEqual(["2", "ps", "1"]);
  });
});
