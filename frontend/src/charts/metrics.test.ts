import { describe, expect, it } from "vitest";
import { chartTitle, groupSeries, higherIsBetter } from "./metrics";

describe("groupSeries", () => {
  it("pairs each metric with its validation twin, loss first and throughput last", () => {
    const groups = groupSeries(["samples_per_second", "val_accuracy", "accuracy", "val_loss", "epoch_loss", "loss"]);
    expect(groups.map((group) => group.metric)).toEqual(["loss", "accuracy", "samples_per_second"]);
    expect(groups[0].members).toEqual([
      { name: "loss", role: "train" },
      { name: "epoch_loss", role: "train-epoch" },
      { name: "val_loss", role: "validation" },
    ]);
    expect(groups[1].members.map((member) => member.name)).toEqual(["accuracy", "val_accuracy"]);
  });

  it("draws the system series after the model's metrics, one chart each", () => {
    const groups = groupSeries(["system/rss_mb", "system/cpu_percent", "val_loss", "samples_per_second", "loss"]);
    expect(groups.map((group) => group.metric)).toEqual(["loss", "samples_per_second", "system/cpu_percent", "system/rss_mb"]);
    expect(chartTitle("system/rss_mb")).toBe("memory (MiB resident)");
    expect(chartTitle("system/new_gauge")).toBe("new_gauge");
    expect(chartTitle("val_accuracy")).toBe("val_accuracy");
  });

  it("gives a validation-only metric its own chart", () => {
    expect(groupSeries(["val_r2"])).toEqual([{ metric: "r2", members: [{ name: "val_r2", role: "validation" }] }]);
  });
});

describe("higherIsBetter", () => {
  it("knows scores from errors", () => {
    expect(higherIsBetter("val_accuracy")).toBe(true);
    expect(higherIsBetter("roc_auc")).toBe(true);
    expect(higherIsBetter("val_loss")).toBe(false);
    expect(higherIsBetter("mae")).toBe(false);
  });
});
