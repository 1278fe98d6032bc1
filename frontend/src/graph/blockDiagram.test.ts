import { describe, expect, it } from "vitest";

import type { OpSchema } from "../api/types";
import { blockDiagram } from "./blockDiagram";

// The resnet_basic_block of engine/blocks, as GET /api/ops publishes it.
const RESNET_BLOCK: OpSchema = {
  name: "resnet_basic_block", category: "blocks", doc: "ResNet basic block", params: [], is_loss: false, block: true, has_weights: true,
  inputs: [{ name: "x", dtype: "float", doc: "(N, C, H, W)" }],
  outputs: [{ name: "out", dtype: "float", doc: "" }],
  graph: {
    nodes: [
      { id: "conv1", op: "conv_bn_relu", params: { filters: "$filters", kernel_size: 3 }, inputs: { x: "$x" } },
      { id: "conv2", op: "conv2d", inputs: { x: "conv1" } },
      { id: "bn2", op: "batch_norm", inputs: { x: "conv2" } },
      { id: "projection", op: "conv2d", when: "$projection", inputs: { x: "$x" } },
      { id: "projection_bn", op: "batch_norm", when: "$projection", inputs: { x: "projection" } },
      { id: "add", op: "add", inputs: { a: "bn2", b: "projection_bn|$x" } },
      { id: "relu", op: "relu", inputs: { x: "add" } },
    ],
    outputs: { out: "relu" },
  },
};

describe("blockDiagram", () => {
  it("has the block's inputs, inner nodes and outputs, wired by port", () => {
    const diagram = blockDiagram(RESNET_BLOCK)!;
    expect(diagram.nodes.map((node) => node.id)).toEqual(
      ["input:x", "conv1", "conv2", "bn2", "projection", "projection_bn", "add", "relu", "output:out"]);
    const into = (target: string) => diagram.edges.filter((edge) => edge.target === target)
      .map((edge) => `${edge.source}>${edge.port}${edge.alternative ? " (alternative)" : ""}`);
    expect(into("conv1")).toEqual(["input:x>x"]);
    expect(into("add")).toEqual(["bn2>a", "projection_bn>b", "input:x>b (alternative)"]);
    expect(into("output:out")).toEqual(["relu>out"]);
    expect(diagram.nodes.find((node) => node.id === "projection")!.when).toBe("$projection");
    expect(diagram.nodes.find((node) => node.id === "conv1")!.params).toEqual({ filters: "$filters", kernel_size: 3 });
  });

  it("places every node right of all that feed it, outputs last", () => {
    const diagram = blockDiagram(RESNET_BLOCK)!;
    const column = Object.fromEntries(diagram.nodes.map((node) => [node.id, node.column]));
    for (const edge of diagram.edges) expect(column[edge.target]).toBeGreaterThan(column[edge.source]);
    expect(column["input:x"]).toBe(0);
    expect(column["output:out"]).toBe(Math.max(...Object.values(column)));
    const cells = diagram.nodes.map((node) => `${node.column},${node.row}`);
    expect(new Set(cells).size).toBe(cells.length); // no two nodes on one spot
  });

  it("is null for an op that is not a block", () => {
    expect(blockDiagram({ ...RESNET_BLOCK, block: false })).toBeNull();
    expect(blockDiagram({ ...RESNET_BLOCK, graph: undefined })).toBeNull();
  });
});
