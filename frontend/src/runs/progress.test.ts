import { describe, expect, it } from "vitest";
import { SeriesStore } from "../charts/series";
import { estimateProgress } from "./progress";

describe("estimateProgress", () => {
  const run = { state: "running", hyperparameters: { epochs: 4, batch_size: 10 }, epochs_completed: 1, steps_completed: 0 };

  it("derives steps, samples per second and the time left from the batch points", () => {
    const store = new SeriesStore();
    // 20 steps per epoch, one step every 0.1 s.
    store.appendPoints(Array.from({ length: 30 }, (_, i) => ({
      seq: i + 1, name: "loss", step: i + 1, epoch: (i + 1) / 20, value: 1, wall_time: 100 + i * 0.1,
    })));
    const estimate = estimateProgress(store, run);
    expect(estimate.step).toBe(30);
    expect(estimate.epoch).toBeCloseTo(1.5);
    expect(estimate.totalSteps).toBe(80);
    expect(estimate.fraction).toBeCloseTo(1.5 / 4);
    expect(estimate.samplesPerSecond).toBeCloseTo(100);
    expect(estimate.etaSeconds).toBeCloseTo(5);
  });

  it("reports a finished run as complete, without an ETA", () => {
    const estimate = estimateProgress(new SeriesStore(), { ...run, state: "succeeded", epochs_completed: 3 });
    expect(estimate.fraction).toBe(1);
    expect(estimate.etaSeconds).toBeNull();
  });
});
