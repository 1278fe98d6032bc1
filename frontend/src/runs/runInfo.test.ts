import { describe, expect, it } from "vitest";
import type { RunState } from "../api/types";
import { flattenHyperparameters, isFinished, RESUMABLE_STATES, stateLabel } from "./runInfo";

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

describe("run states", () => {
  it("labels a timed-out run in words and any state it does not know by its name", () => {
    expect(stateLabel("timed_out")).toBe("timed out");
    expect(stateLabel("succeeded")).toBe("succeeded");
    expect(stateLabel("waiting_for_gpu")).toBe("waiting for gpu");
  });

  it("treats only queued and running runs as live, so a state added later is not taken for one", () => {
    expect(isFinished("queued")).toBe(false);
    expect(isFinished("running")).toBe(false);
    expect(isFinished("timed_out")).toBe(true);
    expect(isFinished("paused" as RunState)).toBe(true);
  });

  it("resumes a timed-out run like a failed or cancelled one", () => {
    expect(RESUMABLE_STATES).toEqual(["failed", "cancelled", "timed_out"]);
  });
});
