import { describe, expect, it } from "vitest";
import { describeExpiry } from "./tokens";

describe("describeExpiry", () => {
  const now = new Date("2026-01-10T12:00:00Z");

  it("says a past or present expiry is expired", () => {
    expect(describeExpiry("2026-01-10T11:59:59Z", now)).toBe("expired");
    expect(describeExpiry("2026-01-10T12:00:00Z", now)).toBe("expired");
  });

  it("counts whole days left, rounded down", () => {
    expect(describeExpiry("2026-01-10T23:00:00Z", now)).toBe("expires today");
    expect(describeExpiry("2026-01-11T13:00:00Z", now)).toBe("expires in 1 day");
    expect(describeExpiry("2026-02-09T12:00:00Z", now)).toBe("expires in 30 days");
  });
});
