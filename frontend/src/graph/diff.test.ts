import { describe, expect, it } from "vitest";
import { diffDocuments, isEmptyDiff } from "./diff";
import { mlpDocument } from "./testing";

describe("diffDocuments", () => {
  it("finds nothing between a document and itself moved around", () => {
    const after = mlpDocument();
    after.nodes[0].position = { x: 500, y: 500 };
    after.edges[0].id = "renamed";
    expect(isEmptyDiff(diffDocuments(mlpDocument(), after))).toBe(true);
  });

  it("lists added and removed nodes and edges", () => {
    const after = mlpDocument();
    after.nodes.push({ id: "relu_1", type: "relu", position: { x: 0, y: 0 }, data: {} });
    after.nodes = after.nodes.filter((node) => node.id !== "output_1");
    after.edges = after.edges.filter((edge) => edge.target !== "output_1");
    after.edges.push({ id: "n", source: "dense_1", sourceHandle: "out", target: "relu_1", targetHandle: "x" });
    const diff = diffDocuments(mlpDocument(), after);
    expect(diff.addedNodes.map((node) => node.id)).toEqual(["relu_1"]);
    expect(diff.removedNodes.map((node) => node.id)).toEqual(["output_1"]);
    expect(diff.addedEdges.map((edge) => edge.id)).toEqual(["n"]);
    expect(diff.removedEdges.map((edge) => edge.id)).toEqual(["e4"]);
  });

  it("lists changed params, labels and input settings field by field", () => {
    const after = mlpDocument();
    after.nodes[2].data = { params: { units: 32, use_bias: false } };
    after.nodes[0].data.shape = [32];
    const diff = diffDocuments(mlpDocument(), after);
    expect(diff.changedNodes).toEqual([
      { id: "x", type: "input", changes: [{ field: "shape", before: [64], after: [32] }] },
      { id: "dense_1", type: "dense", changes: [
        { field: "params.units", before: 10, after: 32 },
        { field: "label", before: "logits", after: undefined },
        { field: "params.use_bias", before: undefined, after: false },
      ] },
    ]);
  });
});
