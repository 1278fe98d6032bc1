import { describe, expect, it } from "vitest";
import { copySelection, pasteClip } from "./clipboard";
import { mlpDocument } from "./testing";

describe("copy and paste", () => {
  it("copies the selected nodes and only the edges among them", () => {
    const clip = copySelection(mlpDocument(), ["x", "dense_1", "output_1"]);
    expect(clip.nodes.map((node) => node.id)).toEqual(["x", "dense_1", "output_1"]);
    expect(clip.edges.map((edge) => edge.id)).toEqual(["e1", "e4"]);
  });

  it("pastes with fresh ids, re-pointed edges and an offset", () => {
    const document = mlpDocument();
    const clip = copySelection(document, ["x", "dense_1"]);
    const pasted = pasteClip(clip, { nodes: document.nodes.map((n) => n.id), edges: document.edges.map((e) => e.id) });
    expect(pasted.nodes.map((node) => node.id)).toEqual(["input_1", "dense_2"]);
    expect(pasted.nodes[1].position).toEqual({ x: 280, y: 40 });
    expect(pasted.edges).toEqual([{ id: "input_1.out->dense_2.x", source: "input_1", sourceHandle: "out", target: "dense_2", targetHandle: "x" }]);
    // The copy of an input takes its id as name, so names stay unique.
    expect(pasted.nodes[0].data.name).toBeUndefined();
    expect(document.nodes[2].data.params).toEqual({ units: 10 });
  });
});
