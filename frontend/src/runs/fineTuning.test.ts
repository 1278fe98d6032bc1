import { describe, expect, it } from "vitest";
import served from "../../../tests/fixtures/training_options_schema.json";
import { formFromRun } from "./rerunForm";
import { buildRequest, defaultForm } from "./trainConfig";
import type { TrainingOptionsSchema } from "./trainingOptions";

const schema = served as unknown as TrainingOptionsSchema;

describe("the train panel's fine-tuning fields", () => {
  it("send only what was set: the parent run, frozen nodes and learning-rate factors", () => {
    const form = defaultForm(schema, "1");
    expect(buildRequest(schema, form, 100).hyperparameters).not.toHaveProperty("init_from_run");
    form.options = { ...form.options, init_from_run: "12", freeze: "fc1, conv*", lr_multipliers: "fc2=0.1" };
    const request = buildRequest(schema, form, 100);
    expect(request.errors).toEqual({});
    expect(request.hyperparameters).toMatchObject({ init_from_run: 12, freeze: "fc1, conv*", lr_multipliers: "fc2=0.1" });
    expect(request.hyperparameters).not.toHaveProperty("init_from_import");
  });

  it("refuse a run id that is not a positive integer, and both sources at once, as the engine does", () => {
    const form = defaultForm(schema, "1");
    form.options = { ...form.options, init_from_run: "0" };
    expect(buildRequest(schema, form, 100).errors.init_from_run).toBe("init_from_run must be a positive integer, got 0");
    form.options = { ...form.options, init_from_run: "3", init_from_import: true };
    expect(buildRequest(schema, form, 100).errors.init_from_import).toBe(
      "init_from_run and init_from_import both choose the starting weights: give one of them");
  });

  it("come back filled from a fine-tuned run (rerun with changes)", () => {
    const run = { dataset: 1, device: "cpu", workers: 1, hyperparameters: { epochs: 3, init_from_run: 7, freeze: "fc1" } };
    const form = formFromRun(schema, run as never);
    expect([form.options.init_from_run, form.options.freeze]).toEqual(["7", "fc1"]);
  });
});
