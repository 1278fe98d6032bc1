import { describe, expect, it } from "vitest";
import { documentKey, fromDocument, parseEditorDocument, toDocument } from "./document";
import { mlpDocument } from "./testing";
import { EDGE_TYPE, NODE_TYPE } from "./types";

describe("document conversion", () => {
  it("round-trips an editor document through the canvas unchanged", () => {
    const document = mlpDocument();
    document.edges[0].data = { order: 1 };
    document.metadata = { author: "test" };
    const back = toDocument(fromDocument(document), document.metadata);
    expect(back).toEqual(document);
  });

  it("draws every node with the NetForge node type and keeps the editor type in data.kind", () => {
    const graph = fromDocument(mlpDocument());
    expect(graph.nodes.every((node) => node.type === NODE_TYPE)).toBe(true);
    expect(graph.edges.every((edge) => edge.type === EDGE_TYPE)).toBe(true);
    expect(graph.nodes.find((node) => node.id === "dense_1")!.data).toEqual({ kind: "dense", fields: { params: { units: 10 }, label: "logits" } });
  });

  it("does not share data objects with the document it came from", () => {
    const document = mlpDocument();
    const graph = fromDocument(document);
    (graph.nodes[2].data.fields.params as Record<string, unknown>).units = 99;
    expect(document.nodes[2].data.params).toEqual({ units: 10 });
  });

  it("rounds positions and leaves selection out of the key", () => {
    const graph = fromDocument(mlpDocument());
    graph.nodes[0].position = { x: 10.4, y: 0.6 };
    graph.nodes[0].selected = true;
    expect(toDocument(graph).nodes[0].position).toEqual({ x: 10, y: 1 });
    const plain = fromDocument(mlpDocument());
    plain.nodes[0].position = { x: 10, y: 1 };
    expect(documentKey(toDocument(graph))).toBe(documentKey(toDocument(plain)));
  });
});

describe("parseEditorDocument", () => {
  it("accepts a valid document and fills in missing positions and data", () => {
    const result = parseEditorDocument(JSON.stringify({ format: "netforge.editor/1", nodes: [{ id: "a", type: "relu" }] }));
    expect(result).toEqual({ ok: true, document: { format: "netforge.editor/1", nodes: [{ id: "a", type: "relu", position: { x: 0, y: 0 }, data: {} }], edges: [] } });
  });

  it.each([
    ["{", /not JSON/],
    ["[]", /JSON object/],
    [JSON.stringify({ nodes: [] }), /expected "format"/],
    [JSON.stringify({ format: "netforge.graph/1", nodes: [] }), /found format "netforge.graph\/1"/],
    [JSON.stringify({ format: "netforge.editor/1" }), /"nodes" must be a list/],
    [JSON.stringify({ format: "netforge.editor/1", nodes: [{ type: "relu" }] }), /nodes\[0\] needs a string "id"/],
    [JSON.stringify({ format: "netforge.editor/1", nodes: [{ id: "a", type: "relu" }, { id: "a", type: "relu" }] }), /two nodes have the id "a"/],
    [JSON.stringify({ format: "netforge.editor/1", nodes: [{ id: "a", type: "relu", position: { x: "1" } }] }), /position/],
    [JSON.stringify({ format: "netforge.editor/1", nodes: [{ id: "a", type: "relu" }], edges: [{ id: "e", source: "a", target: "b" }] }), /target "b" is not a node/],
  ])("refuses %s with a message that says where", (text, message) => {
    const result = parseEditorDocument(text);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toMatch(message);
  });
});
