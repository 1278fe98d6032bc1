import { describe, expect, it } from "vitest";
import { sparklineShape } from "./sparkline";

describe("sparklineShape", () => {
  it("joins neighbouring values and breaks the line at a gap", () => {
    const shape = sparklineShape([0, 2, null, 1, 1], 40, 24);
    expect(shape.path).toBe("M0.0,22.0 L10.0,2.0 M30.0,12.0 L40.0,12.0");
    expect(shape.dots).toEqual([]);
    expect(shape.largest).toBe(2);
  });

  it("draws a value with no neighbour as a dot, kept inside the frame", () => {
    const shape = sparklineShape([null, null, 4.3], 240, 48);
    expect(shape.dots).toEqual([{ x: 237.5, y: 2.5 }]);
  });

  it("says the largest value is 0 when every value is 0, and null when there is none", () => {
    expect(sparklineShape([0, 0, 0], 240, 48).largest).toBe(0);
    expect(sparklineShape([0, 0, 0], 240, 48).path).toBe("M0.0,46.0 L120.0,46.0 L240.0,46.0");
    expect(sparklineShape([null, null], 240, 48)).toEqual({ path: "", dots: [], largest: null });
  });
});
