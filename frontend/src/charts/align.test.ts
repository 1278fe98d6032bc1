import { describe, expect, it } from "vitest";
import type uPlot from "uplot";
import { alignSeries } from "./align";

/** One y column as a plain array, holes (uPlot's missing points) read as null. */
function column(data: uPlot.AlignedData, k: number): (number | null)[] {
  return Array.from(data[k] as ArrayLike<number | null | undefined>, (value) => value ?? null);
}

describe("alignSeries", () => {
  it("hands one complete series over as it is", () => {
    const data = alignSeries([{ x: [1, 2, 3], y: [0.5, 0.4, 0.3] }]);
    expect(Array.from(data[0])).toEqual([1, 2, 3]);
    expect(data[1]).toBeInstanceOf(Float64Array);
    expect(column(data, 1)).toEqual([0.5, 0.4, 0.3]);
  });

  it("gives an empty x axis for no series (a chart before its first point)", () => {
    expect(alignSeries([]).length).toBe(1);
    expect(alignSeries([])[0].length).toBe(0);
  });

  it("merges per-batch and per-epoch series on shared x values", () => {
    const data = alignSeries([
      { x: [1, 2, 3, 4], y: [4, 3, 2, 1] },
      { x: [2, 4], y: [2.5, 1.5] },
    ]);
    expect(Array.from(data[0])).toEqual([1, 2, 3, 4]);
    expect(column(data, 1)).toEqual([4, 3, 2, 1]);
    expect(column(data, 2)).toEqual([null, 2.5, null, 1.5]);
  });

  it("keeps every point, including x values only one series has", () => {
    const data = alignSeries([
      { x: [0.5, 1.5], y: [1, 2] },
      { x: [1, 2], y: [3, 4] },
    ]);
    expect(Array.from(data[0])).toEqual([0.5, 1, 1.5, 2]);
    expect(column(data, 1)).toEqual([1, null, 2, null]);
    expect(column(data, 2)).toEqual([null, 3, null, 4]);
  });

  it("lines up series that share one x array, and series on a subset of another's x values", () => {
    const x = [1, 2, 3];
    const data = alignSeries([{ x, y: [1, 2, 3] }, { x, y: [1.5, 2, NaN] }, { x: [3], y: [9] }]);
    expect(Array.from(data[0])).toEqual([1, 2, 3]);
    expect(column(data, 2)).toEqual([1.5, 2, null]);
    expect(column(data, 3)).toEqual([null, null, 9]);
  });

  it("turns non-finite values into gaps, and non-positive ones too for a log scale", () => {
    expect(column(alignSeries([{ x: [1, 2], y: [NaN, 1] }]), 1)).toEqual([null, 1]);
    expect(column(alignSeries([{ x: [1, 2, 3], y: [0, -1, 2] }], { positiveOnly: true }), 1)).toEqual([null, null, 2]);
  });

  it("sorts a series whose x values go back", () => {
    const data = alignSeries([{ x: [3, 1, 2], y: [30, 10, 20] }, { x: [2], y: [5] }]);
    expect(Array.from(data[0])).toEqual([1, 2, 3]);
    expect(column(data, 1)).toEqual([10, 20, 30]);
  });

  // How long this takes per redraw is measured by `make bench` (charts.bench.ts), not asserted here.
  it("aligns a 100,000-point curve with per-epoch series on the curve's own rows", () => {
    const n = 100_000;
    const batch = { x: Float64Array.from({ length: n }, (_, i) => i + 1), y: Float64Array.from({ length: n }, (_, i) => 1 / (i + 1)) };
    const epochs = { x: Float64Array.from({ length: 100 }, (_, i) => (i + 1) * 1000), y: new Float64Array(100).fill(0.5) };
    const data = alignSeries([batch, epochs, epochs]);
    expect(data[0].length).toBe(n);
    expect(data[1][n - 1]).toBe(1 / n);
    expect(data[2][999]).toBe(0.5);
    expect(data[2][1000]).toBeUndefined();
  });
});
