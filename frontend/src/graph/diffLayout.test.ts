import { describe, expect, it } from "vitest";
import { diffGraph, type DiffNode, type DiffStatus } from "./diff";
import { estimateDiffNodeSize, NUDGE_GAP, nudgeRemovedNodes } from "./diffLayout";
import { mlpDocument, testLookup } from "./testing";

function diffNode(id: string, status: DiffStatus, x: number, y: number, extra: Partial<DiffNode> = {}): DiffNode {
  return { id, type: "relu", status, position: { x, y }, data: {}, changes: [], inputs: ["x"], outputs: ["out"], ...extra };
}

const box = () => ({ width: 100, height: 50 });
const at = (nodes: DiffNode[], id: string) => nodes.find((node) => node.id === id)!.position;

describe("nudgeRemovedNodes", () => {
  it("moves a removed node standing where a newer node now stands below it, keeping its column", () => {
    const nodes = [diffNode("old", "removed", 10, 5), diffNode("new", "added", 0, 0)];
    const nudged = nudgeRemovedNodes(nodes, box);
    expect(at(nudged, "old")).toEqual({ x: 10, y: 50 + NUDGE_GAP });
    expect(nudged[1]).toBe(nodes[1]);
    expect(nudged.map((node) => node.id)).toEqual(["old", "new"]);
  });

  it("leaves a removed node on free ground where it was", () => {
    const nodes = [diffNode("old", "removed", 0, 200), diffNode("kept", "unchanged", 0, 0), diffNode("wider", "changed", 150, 200)];
    const nudged = nudgeRemovedNodes(nodes, box);
    expect(nudged).toEqual(nodes);
    expect(nudged[0]).toBe(nodes[0]);
  });

  it("keeps moving down past every node in the way, and removed nodes clear of one another", () => {
    const nodes = [
      diffNode("first", "removed", 0, 0),
      diffNode("second", "removed", 0, 0),
      diffNode("top", "unchanged", 0, 0),
      diffNode("below", "added", 0, 60), // where a single step down would land
    ];
    const nudged = nudgeRemovedNodes(nodes, box);
    expect(at(nudged, "first")).toEqual({ x: 0, y: 60 + 50 + NUDGE_GAP });
    expect(at(nudged, "second")).toEqual({ x: 0, y: 60 + 2 * (50 + NUDGE_GAP) });
    expect(at(nudged, "top")).toEqual({ x: 0, y: 0 });
    expect(at(nudged, "below")).toEqual({ x: 0, y: 60 });
  });
});

describe("estimateDiffNodeSize", () => {
  it("grows with the port rows, the key params and the changes the node lists", () => {
    const bare = estimateDiffNodeSize(diffNode("a", "unchanged", 0, 0), 0);
    const withParams = estimateDiffNodeSize(diffNode("a", "unchanged", 0, 0), 2);
    const withPorts = estimateDiffNodeSize(diffNode("a", "unchanged", 0, 0, { inputs: ["logits", "labels"] }), 0);
    const changed = estimateDiffNodeSize(diffNode("a", "changed", 0, 0, { changes: [{ field: "params.units", before: 1, after: 2 }] }), 0);
    expect(withParams.height).toBeGreaterThan(bare.height);
    expect(withPorts.height).toBeGreaterThan(bare.height);
    expect(changed.height).toBeGreaterThan(bare.height);
    expect(new Set([bare, withParams, withPorts, changed].map((size) => size.width)).size).toBe(1);
  });
});

describe("diffGraph", () => {
  it("draws a removed node clear of the new node placed where it stood", () => {
    const after = mlpDocument();
    const removed = after.nodes.find((node) => node.id === "output_1")!;
    after.nodes = after.nodes.filter((node) => node !== removed);
    after.edges = after.edges.filter((edge) => edge.target !== "output_1");
    after.nodes.push({ id: "relu_1", type: "relu", position: { ...removed.position }, data: {} });
    const { nodes } = diffGraph(mlpDocument(), after, testLookup);
    const size = (id: string) => estimateDiffNodeSize(nodes.find((node) => node.id === id)!, 0);
    expect(at(nodes, "relu_1")).toEqual({ x: 480, y: 110 });
    expect(at(nodes, "output_1")).toEqual({ x: 480, y: 110 + size("relu_1").height + NUDGE_GAP });
  });
});
