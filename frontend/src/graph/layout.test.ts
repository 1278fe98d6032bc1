import { describe, expect, it } from "vitest";
import { fromDocument } from "./document";
import { buildElkGraph, portId, positionsFromElk, withPositions } from "./layout";
import { nodePorts } from "./ports";
import { mlpDocument, testLookup } from "./testing";

describe("buildElkGraph", () => {
  const graph = fromDocument(mlpDocument());
  const order = (id: string) => {
    const node = graph.nodes.find((candidate) => candidate.id === id)!;
    const ports = nodePorts(node.data.kind, node.data.fields, testLookup);
    return { inputs: ports.inputs.map((p) => p.name), outputs: ports.outputs.map((p) => p.name) };
  };

  it("asks for a layered left-to-right layout", () => {
    const elk = buildElkGraph(graph, order);
    expect(elk.layoutOptions["elk.algorithm"]).toBe("layered");
    expect(elk.layoutOptions["elk.direction"]).toBe("DOWN");
  });

  it("gives every node its size and its ports on the sides in catalog order", () => {
    const elk = buildElkGraph(graph, order, { dense_1: { width: 210, height: 120 } });
    const dense = elk.children.find((child) => child.id === "dense_1")!;
    expect(dense).toMatchObject({ width: 210, height: 120 });
    const loss = elk.children.find((child) => child.id === "loss_1")!;
    expect(loss.ports.map((p) => [p.id, p.layoutOptions?.["elk.port.side"], p.layoutOptions?.["elk.port.index"]])).toEqual([
      [portId("loss_1", "in", "logits"), "NORTH", "0"],
      [portId("loss_1", "in", "labels"), "NORTH", "1"],
      [portId("loss_1", "out", "out"), "SOUTH", "0"],
    ]);
    expect(elk.children.find((child) => child.id === "x")).toMatchObject({ width: 200, height: 90 });
  });

  it("connects edges port to port and skips edges to missing nodes", () => {
    const broken = fromDocument(mlpDocument());
    broken.edges.push({ id: "ghost", type: "shape", source: "x", sourceHandle: "out", target: "gone", targetHandle: "x" });
    const elk = buildElkGraph(broken, order);
    expect(elk.edges).toHaveLength(4);
    expect(elk.edges[0]).toEqual({ id: "e1", sources: [portId("x", "out", "out")], targets: [portId("dense_1", "in", "x")] });
  });

  it("reads positions back from ELK's result", () => {
    const positions = positionsFromElk({ children: [{ id: "x", x: 12.3, y: 40.7 }] });
    expect(positions).toEqual({ x: { x: 12, y: 41 } });
    expect(withPositions(mlpDocument(), positions).nodes[0].position).toEqual({ x: 12, y: 41 });
  });
});
