import { describe, expect, it } from "vitest";
import { formatTick, yAxisSize } from "./chart";

describe("formatTick", () => {
  it("shortens large numbers so a samples/s axis is not clipped", () => {
    expect(formatTick(100000)).toBe("100k");
    expect(formatTick(25000)).toBe("25k");
    expect(formatTick(1500000)).toBe("1.5M");
    expect(formatTick(2e9)).toBe("2G");
    expect(formatTick(9500)).toBe("9500");
    expect(formatTick(100500)).toBe("100.5k");
    expect(formatTick(1234.5)).toBe("1234.5");
  });

  it("never shows a positive log-scale tick as 0", () => {
    for (const tick of [1e-3, 1e-4, 1e-5, 1e-8, 2.5e-4]) expect(formatTick(tick)).not.toMatch(/^0(\.0*)?$/);
    expect(formatTick(1e-4)).toBe("1e-4");
    expect(formatTick(2.5e-4)).toBe("2.5e-4");
    expect(formatTick(0.01)).toBe("0.01");
    expect(formatTick(0.3)).toBe("0.3");
    expect(formatTick(0)).toBe("0");
  });
});

describe("yAxisSize", () => {
  it("grows with the longest label", () => {
    expect(yAxisSize(["0", "1"])).toBe(40);
    expect(yAxisSize(["100,000"])).toBeGreaterThanOrEqual(18 + 7 * 7);
    expect(yAxisSize(null)).toBe(40);
  });
});
