import { describe, expect, it } from "vitest";
import { formToView, viewToForm } from "./viewForm";

describe("dataset views", () => {
  it("round-trips a view through the form", () => {
    const form = viewToForm({ kind: "image", shape: [1, 8, 8], layout: "chw" });
    expect(form).toEqual({ kind: "image", shape: "1, 8, 8", layout: "chw" });
    expect(formToView(form)).toEqual({ view: { kind: "image", shape: [1, 8, 8], layout: "chw" } });
    expect(formToView(viewToForm({}))).toEqual({ view: {} });
    expect(formToView({ kind: "sequence", shape: "20 x 3", layout: "chw" })).toEqual({ view: { kind: "sequence", shape: [20, 3] } });
  });
  it("says what to fix in a bad shape", () => {
    expect(formToView({ kind: "image", shape: "8, 8", layout: "chw" })).toHaveProperty("error");
    expect(formToView({ kind: "sequence", shape: "2, -1", layout: "chw" })).toHaveProperty("error");
  });
});
