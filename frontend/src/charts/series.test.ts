import { describe, expect, it } from "vitest";
import { SeriesStore } from "./series";

describe("SeriesStore", () => {
  it("loads a history and appends live points into growing typed arrays", () => {
    const store = new SeriesStore();
    let changes = 0;
    store.subscribe(() => changes++);
    store.loadHistory({
      loss: { steps: [1, 2], epochs: [0.5, 1], values: [2, 1], wall_times: [100, 101], sequences: [1, 2], total: 2 },
    });
    const points = Array.from({ length: 1000 }, (_, i) => ({
      seq: 3 + i, name: "loss", step: 3 + i, epoch: 1 + i / 2, value: 1 / (i + 1), wall_time: 102 + i,
    }));
    store.appendPoints(points);
    const loss = store.get("loss")!;
    expect(loss.length).toBe(1002);
    expect(loss.steps[1001]).toBe(1002);
    expect(Array.from(loss.x("wall", store.wallOrigin).subarray(0, 3))).toEqual([0, 1, 2]);
    expect(changes).toBe(2);
  });

  it("stores a null value as a gap", () => {
    const store = new SeriesStore();
    store.appendPoints([{ seq: 1, name: "loss", step: 1, epoch: 1, value: null as unknown as number, wall_time: 1 }]);
    expect(Number.isNaN(store.get("loss")!.values[0])).toBe(true);
    expect(store.get("loss")!.hasGaps).toBe(true);
  });
});
