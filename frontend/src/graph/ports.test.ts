import { describe, expect, it } from "vitest";
import { fromDocument } from "./document";
import { checkConnection, dtypeClass, nodePorts, reaches } from "./ports";
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
    expect(checkConnection(graph, { source: "dense_1", sourceHandle: "out", target: "embedding_1", targetHandle: "indices" }, testLookup, "int32").ok).toBe(true);
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
