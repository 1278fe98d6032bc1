import { describe, expect, it } from "vitest";
import type { ParamSchema } from "../api/types";
import { keyParams, paramText, parseParam } from "./params";
import { TEST_OPS } from "./testing";

function schema(type: ParamSchema["type"], extra: Partial<ParamSchema> = {}): ParamSchema {
  return { name: "p", type, doc: "", required: false, ...extra };
}

describe("parseParam", () => {
  it("reads numbers within bounds", () => {
    expect(parseParam(schema("int", { minimum: 1 }), "128")).toEqual({ ok: true, value: 128 });
    expect(parseParam(schema("int", { minimum: 1 }), "0")).toEqual({ ok: false, error: "at least 1" });
    expect(parseParam(schema("int"), "1.5").ok).toBe(false);
    expect(parseParam(schema("float", { maximum: 1 }), "0.25")).toEqual({ ok: true, value: 0.25 });
  });

  it("treats an empty field as unset and null as null where allowed", () => {
    expect(parseParam(schema("int"), " ")).toEqual({ ok: true, value: undefined });
    expect(parseParam(schema("int", { nullable: true }), "null")).toEqual({ ok: true, value: null });
    expect(parseParam(schema("int"), "null").ok).toBe(false);
  });

  it("reads lists with or without brackets", () => {
    expect(parseParam(schema("int_list", { minimum: 1 }), "3, 3")).toEqual({ ok: true, value: [3, 3] });
    expect(parseParam(schema("int_list"), "[2]")).toEqual({ ok: true, value: [2] });
    expect(parseParam(schema("shape"), "[1, 28, 28]")).toEqual({ ok: true, value: [1, 28, 28] });
    expect(parseParam(schema("shape"), "[-1, 4]")).toEqual({ ok: true, value: [-1, 4] });
    expect(parseParam(schema("axes"), "1")).toEqual({ ok: true, value: 1 });
    expect(parseParam(schema("int_list"), "a, b").ok).toBe(false);
  });

  it("reads padding as a word or numbers, and dicts as JSON objects", () => {
    const padding = schema("padding", { choices: ["valid", "same"], minimum: 0 });
    expect(parseParam(padding, "same")).toEqual({ ok: true, value: "same" });
    expect(parseParam(padding, "1")).toEqual({ ok: true, value: 1 });
    expect(parseParam(schema("dict"), "{\"a\": 1}")).toEqual({ ok: true, value: { a: 1 } });
    expect(parseParam(schema("dict"), "[1]").ok).toBe(false);
  });

  it("writes values back as the text parseParam reads", () => {
    expect(paramText([3, 3])).toBe("[3,3]");
    expect(paramText(null)).toBe("null");
    expect(paramText(undefined)).toBe("");
    expect(paramText("same")).toBe("same");
  });
});

describe("keyParams", () => {
  it("shows required params (? when missing) and values that differ from the default", () => {
    const dense = TEST_OPS[0];
    expect(keyParams(dense, {})).toEqual([["units", "?"]]);
    expect(keyParams(dense, { units: 64 })).toEqual([["units", "64"]]);
  });
});
