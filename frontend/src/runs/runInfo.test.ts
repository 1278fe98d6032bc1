import { describe, expect, it } from "vitest";
import { flattenHyperparameters } from "./runInfo";

describe("flattenHyperparameters", () => {
  it("spells nested options as dotted keys", () => {
    expect(flattenHyperparameters({
      epochs: 5, optimizer: { name: "adam", lr: 0.001, schedule: { name: "cosine", total_steps: 100 } }, early_stopping: null, metrics: ["accuracy"],
    })).toEqual({
      epochs: 5, "optimizer.name": "adam", "optimizer.lr": 0.001, "optimizer.schedule.name": "cosine",
      "optimizer.schedule.total_steps": 100, early_stopping: null, metrics: ["accuracy"],
    });
  });
});
