import { describe, expect, it } from "vitest";
import { describeChange, diffDocuments, diffGraph, isEmptyDiff } from "./diff";
import { mlpDocument, testLookup } from "./testing";

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

describe("diffGraph", () => {
  // v2 of the MLP: dense_1 wider, a ReLU and a second dense between it and the loss, the output node gone.
  function widerDocument() {
    const after = mlpDocument();
    after.nodes[2].data = { params: { units: 32 }, label: "logits" };
    after.nodes[2].position = { x: 200, y: 20 };
    after.nodes = after.nodes.filter((node) => node.id !== "output_1");
    after.nodes.push({ id: "relu_1", type: "relu", position: { x: 400, y: 0 }, data: {} });
    after.edges = after.edges.filter((edge) => edge.id !== "e2" && edge.id !== "e4");
    after.edges.push({ id: "e2", source: "dense_1", sourceHandle: "out", target: "relu_1", targetHandle: "x" });
    after.edges.push({ id: "e5", source: "relu_1", sourceHandle: "out", target: "loss_1", targetHandle: "logits" });
    return after;
  }

  it("draws the union of both graphs, each node marked and removed ones first", () => {
    const { nodes } = diffGraph(mlpDocument(), widerDocument(), testLookup);
    expect(nodes.map((node) => [node.id, node.status])).toEqual([
      ["output_1", "removed"],
      ["x", "unchanged"], ["y", "unchanged"], ["dense_1", "changed"], ["loss_1", "unchanged"], ["relu_1", "added"],
    ]);
    expect(nodes.find((node) => node.id === "dense_1")!.changes).toEqual([{ field: "params.units", before: 10, after: 32 }]);
    expect(nodes.find((node) => node.id === "x")!.changes).toEqual([]);
  });

  it("places nodes where the newer document has them, removed nodes where the older one had them", () => {
    const { nodes } = diffGraph(mlpDocument(), widerDocument(), testLookup);
    const at = (id: string) => nodes.find((node) => node.id === id)!.position;
    expect(at("dense_1")).toEqual({ x: 200, y: 20 });
    expect(at("relu_1")).toEqual({ x: 400, y: 0 });
    expect(at("output_1")).toEqual({ x: 480, y: 110 });
  });

  it("marks edges by what they connect, with ids unique even where the two documents reuse one", () => {
    const { edges } = diffGraph(mlpDocument(), widerDocument(), testLookup);
    const described = edges.map((edge) => `${edge.status} ${edge.source}.${edge.sourceHandle}->${edge.target}.${edge.targetHandle}`);
    expect(described).toEqual([
      "unchanged x.out->dense_1.x",
      "unchanged y.out->loss_1.labels",
      "added dense_1.out->relu_1.x",
      "added relu_1.out->loss_1.logits",
      "removed dense_1.out->loss_1.logits",
      "removed dense_1.out->output_1.in",
    ]);
    expect(new Set(edges.map((edge) => edge.id)).size).toBe(edges.length);
  });

  it("gives every node the ports its edges need, catalog ports first", () => {
    const after = mlpDocument();
    after.nodes.push({ id: "mystery", type: "no_such_op", position: { x: 0, y: 0 }, data: {} });
    after.edges.push({ id: "m", source: "dense_1", sourceHandle: "out", target: "mystery", targetHandle: "a" });
    const { nodes } = diffGraph(mlpDocument(), after, testLookup);
    const ports = (id: string) => { const node = nodes.find((candidate) => candidate.id === id)!; return [node.inputs, node.outputs]; };
    expect(ports("loss_1")).toEqual([["logits", "labels"], ["out"]]);
    expect(ports("x")).toEqual([[], ["out"]]);
    expect(ports("output_1")).toEqual([["in"], []]);
    expect(ports("mystery")).toEqual([["a"], []]);
  });

  it("marks nothing between a version and itself", () => {
    const { nodes, edges, diff } = diffGraph(mlpDocument(), mlpDocument(), testLookup);
    expect(isEmptyDiff(diff)).toBe(true);
    expect(new Set([...nodes, ...edges].map((item) => item.status))).toEqual(new Set(["unchanged"]));
  });
});

describe("describeChange", () => {
  it("names params by their own name and says when a side lacks the field", () => {
    expect(describeChange({ field: "params.units", before: 10, after: 32 })).toBe("units: 10 → 32");
    expect(describeChange({ field: "shape", before: [64], after: [32] })).toBe("shape: [64] → [32]");
    expect(describeChange({ field: "label", before: "logits", after: undefined })).toBe("label: logits → unset");
    expect(describeChange({ field: "params.axis", before: undefined, after: null })).toBe("axis: unset → none");
  });
});
