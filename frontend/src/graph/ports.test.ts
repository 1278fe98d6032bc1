import { describe, expect, it } from "vitest";
import { fromDocument } from "./document";
import { checkConnection, describeRank, describeShape, dtypeClass, nodePorts, rankRange, reaches } from "./ports";
import { mlpDocument, testLookup } from "./testing";
import type { Graph } from "./types";

function graphWith(extra: { id: string; type: string; data?: Record<string, unknown> }[] = []): Graph {
  const document = mlpDocument();
  for (const node of extra) document.nodes.push({ id: node.id, type: node.type, position: { x: 0, y: 0 }, data: node.data ?? {} });
  return fromDocument(document);
}

describe("ports", () => {
  it("maps dtypes to classes", () => {
    expect(dtypeClass("float32")).toBe("float");
    expect(dtypeClass("int64")).toBe("int");
    expect(dtypeClass("any")).toBe("any");
    expect(dtypeClass(undefined)).toBe("any");
  });

  it("gives input nodes one output named out typed by their dtype, and sinks one input named in", () => {
    expect(nodePorts("input", { dtype: "int64" }, testLookup).outputs).toMatchObject([{ name: "out", dtype: "int" }]);
    expect(nodePorts("input", {}, testLookup).outputs).toMatchObject([{ name: "out", dtype: "float" }]);
    expect(nodePorts("loss", {}, testLookup).inputs).toMatchObject([{ name: "in", dtype: "any" }]);
    expect(nodePorts("concat", {}, testLookup).inputs).toMatchObject([{ name: "x", variadic: true }]);
    expect(nodePorts("no_such_op", {}, testLookup)).toEqual({ inputs: [], outputs: [] });
  });

  it("carries the ranks a port takes, and leaves them out where any rank will do", () => {
    expect(nodePorts("conv2d", {}, testLookup).inputs[0].rank).toEqual([4, 4]);
    expect(nodePorts("batch_norm", {}, testLookup).inputs[0].rank).toEqual([2, null]);
    expect(nodePorts("relu", {}, testLookup).inputs[0]).not.toHaveProperty("rank");
  });

  it("reads only well-formed rank ranges from the catalog", () => {
    expect(rankRange([1, 3])).toEqual([1, 3]);
    expect(rankRange([0, null])).toEqual([0, null]);
    for (const malformed of [undefined, null, 4, [4], [3, 2], [-1, 2], [1.5, 2], ["4", "4"], [null, 4]]) {
      expect(rankRange(malformed)).toBeUndefined();
    }
  });

  it("words ranks and shapes the way the refusals show them", () => {
    expect(describeRank([4, 4])).toBe("4-D");
    expect(describeRank([2, 4])).toBe("2-D to 4-D");
    expect(describeRank([2, null])).toBe("2-D or higher");
    expect(describeShape([null, 128])).toBe("[?, 128]");
    expect(describeShape([])).toBe("[]");
  });
});

describe("checkConnection", () => {
  it("accepts a float output into a float input", () => {
    const graph = graphWith([{ id: "relu_1", type: "relu" }]);
    expect(checkConnection(graph, { source: "dense_1", sourceHandle: "out", target: "relu_1", targetHandle: "x" }, testLookup)).toEqual({ ok: true });
  });

  it("refuses self loops", () => {
    const graph = graphWith([{ id: "relu_1", type: "relu" }]);
    const check = checkConnection(graph, { source: "relu_1", sourceHandle: "out", target: "relu_1", targetHandle: "x" }, testLookup);
    expect(check).toEqual({ ok: false, reason: "a node cannot feed itself" });
  });

  it("refuses a dtype class mismatch and says which", () => {
    const graph = graphWith([{ id: "embedding_1", type: "embedding" }]);
    const check = checkConnection(graph, { source: "dense_1", sourceHandle: "out", target: "embedding_1", targetHandle: "indices" }, testLookup);
    expect(check.ok).toBe(false);
    if (!check.ok) expect(check.reason).toMatch(/takes int tensors, 'dense_1' gives float/);
    expect(checkConnection(graph, { source: "y", sourceHandle: "out", target: "embedding_1", targetHandle: "indices" }, testLookup).ok).toBe(true);
  });

  it("prefers the dtype validation inferred for the source", () => {
    const graph = graphWith([{ id: "embedding_1", type: "embedding" }]);
    expect(checkConnection(graph, { source: "dense_1", sourceHandle: "out", target: "embedding_1", targetHandle: "indices" }, testLookup, { dtype: "int32" }).ok).toBe(true);
  });

  it("refuses a source whose inferred rank the target port does not take, and says both", () => {
    const graph = graphWith([{ id: "fc1", type: "dense" }, { id: "conv1", type: "conv2d" }]);
    const connection = { source: "fc1", sourceHandle: "out", target: "conv1", targetHandle: "x" };
    expect(checkConnection(graph, connection, testLookup, { dtype: "float32", shape: [null, 128] })).toEqual({
      ok: false, reason: "port 'x' of 'conv1' takes 4-D tensors, 'fc1' gives [?, 128] (2-D)",
    });
    expect(checkConnection(graph, connection, testLookup, { dtype: "float32", shape: [null, 3, 28, 28] })).toEqual({ ok: true });
  });

  it("lets any shape through while it is unknown", () => {
    const graph = graphWith([{ id: "conv1", type: "conv2d" }]);
    const connection = { source: "dense_1", sourceHandle: "out", target: "conv1", targetHandle: "x" };
    expect(checkConnection(graph, connection, testLookup)).toEqual({ ok: true });
    expect(checkConnection(graph, connection, testLookup, { dtype: "float32" })).toEqual({ ok: true });
    expect(checkConnection(graph, connection, testLookup, { dtype: "float32", shape: null })).toEqual({ ok: true });
  });

  it("takes ranks from the minimum up when the range has no maximum", () => {
    const graph = graphWith([{ id: "bn", type: "batch_norm" }]);
    const connection = { source: "dense_1", sourceHandle: "out", target: "bn", targetHandle: "x" };
    expect(checkConnection(graph, connection, testLookup, { shape: [null, 8, 4, 4, 4] }).ok).toBe(true);
    const check = checkConnection(graph, connection, testLookup, { shape: [8] });
    expect(check).toEqual({ ok: false, reason: "port 'x' of 'bn' takes 2-D or higher tensors, 'dense_1' gives [8] (1-D)" });
  });

  it("lets ports without a rank range take any rank, scalars included", () => {
    const graph = graphWith([{ id: "relu_1", type: "relu" }]);
    const connection = { source: "dense_1", sourceHandle: "out", target: "relu_1", targetHandle: "x" };
    expect(checkConnection(graph, connection, testLookup, { shape: [] }).ok).toBe(true);
    expect(checkConnection(graph, connection, testLookup, { shape: [null, 1, 2, 3, 4, 5] }).ok).toBe(true);
  });

  it("reports a dtype mismatch before a rank mismatch", () => {
    const graph = graphWith([{ id: "conv1", type: "conv2d" }]);
    const check = checkConnection(graph, { source: "y", sourceHandle: "out", target: "conv1", targetHandle: "x" }, testLookup,
      { dtype: "int64", shape: [null] });
    expect(check.ok).toBe(false);
    if (!check.ok) expect(check.reason).toMatch(/takes float tensors, 'y' gives int/);
  });

  it("allows one edge per ordinary input port", () => {
    const graph = graphWith([{ id: "x2", type: "input", data: { name: "x2", shape: [3] } }]);
    const check = checkConnection(graph, { source: "x2", sourceHandle: "out", target: "dense_1", targetHandle: "x" }, testLookup);
    expect(check.ok).toBe(false);
    if (!check.ok) expect(check.reason).toMatch(/already has an input from 'x'/);
  });

  it("lets variadic ports take several edges, but not the same one twice", () => {
    const graph = graphWith([{ id: "concat_1", type: "concat" }]);
    graph.edges.push({ id: "c1", type: "shape", source: "x", sourceHandle: "out", target: "concat_1", targetHandle: "x" });
    expect(checkConnection(graph, { source: "dense_1", sourceHandle: "out", target: "concat_1", targetHandle: "x" }, testLookup).ok).toBe(true);
    expect(checkConnection(graph, { source: "x", sourceHandle: "out", target: "concat_1", targetHandle: "x" }, testLookup))
      .toEqual({ ok: false, reason: "these ports are already connected" });
  });

  it("refuses edges that close a cycle", () => {
    const graph = graphWith([{ id: "relu_1", type: "relu" }, { id: "relu_2", type: "relu" }]);
    graph.edges.push({ id: "a", type: "shape", source: "dense_1", sourceHandle: "out", target: "relu_1", targetHandle: "x" });
    graph.edges.push({ id: "b", type: "shape", source: "relu_1", sourceHandle: "out", target: "relu_2", targetHandle: "x" });
    expect(reaches(graph, "dense_1", "relu_2")).toBe(true);
    const dense2 = graphWith([{ id: "dense_2", type: "dense" }]).nodes.at(-1)!;
    graph.nodes.push(dense2);
    graph.edges.push({ id: "c", type: "shape", source: "relu_2", sourceHandle: "out", target: "dense_2", targetHandle: "x" });
    // dense_1 already has its input, so test the cycle on a variadic port instead.
    const concat = graphWith([{ id: "concat_1", type: "concat" }]).nodes.at(-1)!;
    graph.nodes.push(concat);
    graph.edges.push({ id: "d", type: "shape", source: "concat_1", sourceHandle: "out", target: "relu_1", targetHandle: "x" });
    const check = checkConnection(graph, { source: "relu_2", sourceHandle: "out", target: "concat_1", targetHandle: "x" }, testLookup);
    expect(check.ok).toBe(false);
    if (!check.ok) expect(check.reason).toMatch(/cycle/);
  });

  it("refuses unknown ports", () => {
    const graph = graphWith();
    const check = checkConnection(graph, { source: "x", sourceHandle: "nope", target: "dense_1", targetHandle: "x" }, testLookup);
    expect(check.ok).toBe(false);
  });
});
