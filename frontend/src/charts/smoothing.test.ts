import { describe, expect, it } from "vitest";
import { smoothEma } from "./smoothing";

describe("smoothEma", () => {
  it("returns the values unchanged at weight 0", () => {
    expect(Array.from(smoothEma([3, 1, 4, 1, 5], 0))).toEqual([3, 1, 4, 1, 5]);
  });

  it("is debiased: the first point is the first value, not pulled towards zero", () => {
    const smoothed = smoothEma([10, 20], 0.9);
    expect(smoothed[0]).toBeCloseTo(10);
    // (0.9 * 0.1 * 10 + 0.1 * 20) / (1 - 0.81) = (0.9 + 2) / 0.19
    expect(smoothed[1]).toBeCloseTo(2.9 / 0.19);
  });

  it("matches TensorBoard's formula step by step", () => {
    const values = [1, 0.5, 0.8, 0.2, 0.4];
    const weight = 0.6;
    let last = 0;
    const expected = values.map((value, i) => {
      last = last * weight + (1 - weight) * value;
      return last / (1 - weight ** (i + 1));
    });
    const smoothed = smoothEma(values, weight);
    expected.forEach((value, i) => expect(smoothed[i]).toBeCloseTo(value, 12));
  });

  it("keeps a constant series exactly constant", () => {
    expect(Array.from(smoothEma([0.1, 0.1, 0.1, 0.1], 0.99))).toEqual([0.1, 0.1, 0.1, 0.1]);
  });

  it("passes non-finite values through without letting them into the average", () => {
    const smoothed = smoothEma([1, NaN, 1, Infinity, 1], 0.5);
    expect(smoothed[0]).toBe(1);
    expect(Number.isNaN(smoothed[1])).toBe(true);
    expect(smoothed[2]).toBeCloseTo(1);
    expect(smoothed[3]).toBe(Infinity);
    expect(smoothed[4]).toBeCloseTo(1);
  });

  it("writes into a given buffer", () => {
    const out = new Float64Array(8);
    expect(smoothEma([1, 2, 3], 0.5, out)).toBe(out);
  });

  // Its speed on 100,000 points is measured by `make bench` (charts.bench.ts), not asserted here.
  it("smooths 100,000 points into finite values that stay within the input's range", () => {
    const values = Float64Array.from({ length: 100_000 }, (_, i) => Math.sin(i) + i * 1e-5);
    const smoothed = smoothEma(values, 0.95);
    expect(smoothed.length).toBe(values.length);
    let low = Infinity, high = -Infinity;
    for (const value of values) { low = Math.min(low, value); high = Math.max(high, value); }
    expect(smoothed.every((value) => Number.isFinite(value) && value >= low && value <= high)).toBe(true);
  });
});
