import { describe, expect, it } from "vitest";
import { formatBytes, formatCount, formatShape, formatValue } from "./format";

describe("format", () => {
  it("draws shapes with ? for the batch axis", () => {
    expect(formatShape([null, 64])).toBe("?×64");
    expect(formatShape([null, 1, 28, 28])).toBe("?×1×28×28");
    expect(formatShape([])).toBe("scalar");
    expect(formatShape(null)).toBe("");
  });

  it("shortens counts and bytes", () => {
    expect(formatCount(950)).toBe("950");
    expect(formatCount(17226)).toBe("17.2k");
    expect(formatCount(3_400_000)).toBe("3.4M");
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(409504)).toBe("400 KiB");
  });

  it("writes values briefly", () => {
    expect(formatValue([3, 3])).toBe("[3, 3]");
    expect(formatValue(null)).toBe("none");
    expect(formatValue(true)).toBe("true");
  });
});
