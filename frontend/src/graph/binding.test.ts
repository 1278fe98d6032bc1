import { describe, expect, it } from "vitest";
import type { Dataset } from "../api/types";
import { bindingFields, boundDatasetId } from "./binding";
import { NODE_TYPE, type GraphNode } from "./types";

const digits: Pick<Dataset, "id" | "schema"> = {
  id: 7,
  schema: { arrays: { x: { shape: [64], dtype: "float32" }, label: { shape: [], dtype: "int64" } }, target: "label" },
};

function input(id: string, fields: GraphNode["data"]["fields"]): GraphNode {
  return { id, type: NODE_TYPE, position: { x: 0, y: 0 }, data: { kind: "input", fields } };
}

describe("binding an input node to a dataset", () => {
  it("takes the features' shape and dtype from the dataset's array x", () => {
    expect(bindingFields({ dtype: "float64" }, digits, "features")).toEqual({ dataset: 7, role: "features", name: "x", shape: [64], dtype: "float32" });
  });

  it("takes the labels from the schema's target when there is no array y", () => {
    expect(bindingFields({}, digits, "labels")).toEqual({ dataset: 7, role: "labels", name: "y", shape: [], dtype: "int64" });
  });

  it("unbinds, keeping the rest of the fields", () => {
    expect(bindingFields({ dataset: 7, role: "features", shape: [64] }, null, "features")).toEqual({ role: "features", shape: [64] });
  });

  it("finds the dataset a script reads: a features input's first", () => {
    expect(boundDatasetId([input("y", { dataset: 3, role: "labels" }), input("x", { dataset: 4, role: "features" })])).toBe(4);
    expect(boundDatasetId([input("y", { dataset: 3, role: "labels" })])).toBe(3);
    expect(boundDatasetId([input("x", {})])).toBeNull();
  });
});
