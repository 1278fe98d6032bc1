import { describe, expect, it } from "vitest";
import table from "../../../tests/fixtures/training_option_cases.json";
import served from "../../../tests/fixtures/training_options_schema.json";
import { domain, show, validateTrainingOptions, type TrainingOptionsSchema } from "./trainingOptions";

// The schema as GET /api/training-options serves it (tests/webapp/test_training_options_api.py
// checks that this copy is the API's) and the table the engine and the API are held to.
const schema = served as unknown as TrainingOptionsSchema;

describe("validateTrainingOptions answers as the engine does", () => {
  it("reserves the options the platform reserves", () => {
    expect(schema.reserved).toEqual(table.reserved);
  });

  for (const testCase of table.cases as { description: string; options: Record<string, unknown>; cleaned?: unknown; errors?: unknown }[]) {
    it(testCase.description, () => {
      const result = validateTrainingOptions(schema, testCase.options);
      if ("cleaned" in testCase) expect(result).toEqual({ cleaned: testCase.cleaned });
      else expect(result).toEqual({ errors: testCase.errors });
    });
  }
});

describe("show and domain", () => {
  it("spell values and ranges as the engine's messages do", () => {
    expect([show(null), show(true), show("x"), show(1e-5), show(1e-7), show([1, "a"])]).toEqual(["null", "true", "'x'", "0.00001", "1e-7", '[1,"a"]']);
    const fraction = schema.options.find((option) => option.name === "validation_fraction")!;
    expect(domain(fraction)).toBe("in [0, 1)");
  });
});
