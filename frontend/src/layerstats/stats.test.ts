import { describe, expect, it } from "vitest";
import { canvasGraph } from "./layout";
import {
  binLabels, heatmapRows, latestValues, mergeSamples, nodeColors, nodeWarnings, rampColor, scaledPositions, seriesOf,
  sparklinePath, statsOf, type LayerSample, type NodeStats,
} from "./stats";

function sample(step: number, nodes: Record<string, NodeStats>, nan: LayerSample["nan"] = null): LayerSample {
  return { step, epoch: step / 10, wall_time: step, nodes, nan };
}

describe("merging samples", () => {
  it("keeps a replayed sample and its live copy once, in step order, and drops the oldest past the cap", () => {
    const replayed = [sample(1, {}), sample(21, {})];
    const merged = mergeSamples(replayed, [sample(41, {}), sample(21, { fc: { grad_norm: 2 } })]);
    expect(merged.map((s) => s.step)).toEqual([1, 21, 41]);
    expect(merged[1].nodes.fc.grad_norm).toBe(2);
    expect(mergeSamples(merged, [sample(61, {})], 2).map((s) => s.step)).toEqual([41, 61]);
    expect(mergeSamples(merged, [])).toBe(merged);
  });
});

describe("values and colours", () => {
  const samples = [
    sample(1, { fc1: { grad_norm: 1 }, fc2: { grad_norm: 10 }, inner: { grad_norm: 5, block: "block1" } }),
    sample(2, { fc1: { grad_norm: 100, dead_fraction: 0.5 }, fc2: { grad_norm: null } }),
  ];

  it("takes each node's latest value, a block node's from its inner nodes", () => {
    expect(latestValues(samples, ["fc1", "fc2", "block1", "x"], "grad_norm")).toEqual(new Map([["fc1", 100], ["fc2", 10], ["block1", 5]]));
    expect(statsOf(samples[0], "block1")?.grad_norm).toBe(5);
    expect(seriesOf(samples, "fc2", "grad_norm")).toEqual([10, null]);
  });

  it("places norms on a log scale and fractions as they are", () => {
    const positions = scaledPositions(new Map([["a", 1], ["b", 10], ["c", 100]]), "grad_norm");
    expect([positions.get("a"), positions.get("b"), positions.get("c")]).toEqual([0, 0.5, 1]);
    expect(scaledPositions(new Map([["a", 0.25]]), "dead_fraction").get("a")).toBe(0.25);
    expect(scaledPositions(new Map([["a", 3]]), "mean").get("a")).toBe(0.5);
  });

  it("colours only the nodes with a value, low dark and high bright", () => {
    const colors = nodeColors(samples, ["fc1", "fc2", "x"], "grad_norm");
    expect([...colors.keys()].sort()).toEqual(["fc1", "fc2"]);
    expect(colors.get("fc2")).toBe(rampColor(0));
    expect(colors.get("fc1")).toBe(rampColor(1));
    expect(rampColor(0)).toBe("rgb(68, 1, 84)");
    expect(rampColor(1)).toBe("rgb(253, 231, 37)");
  });
});

describe("warnings", () => {
  it("names the NaN source, exploding and vanishing gradients, dead and saturated layers", () => {
    const samples = [sample(5, {
      big: { grad_norm: 5e3 }, jumpy: { grad_norm: 1, update_ratio: 0.9 }, tiny: { grad_norm: 1e-9 }, fine: { grad_norm: 0.5, update_ratio: 1e-3 },
      relu: { dead_fraction: 0.95 }, tanh: { saturation: 0.97 },
    })];
    const nan = { step: 7, node: "log1", where: "output" as const };
    const kinds = (id: string) => nodeWarnings(samples, nan, id).map((warning) => warning.kind);
    expect(kinds("log1")).toEqual(["nan"]);
    expect(nodeWarnings(samples, nan, "log1")[0].message).toContain("step 7");
    expect(kinds("big")).toEqual(["exploding"]);
    expect(kinds("jumpy")).toEqual(["exploding"]);
    expect(kinds("tiny")).toEqual(["vanishing"]);
    expect(kinds("fine")).toEqual([]);
    expect(kinds("relu")).toEqual(["dead"]);
    expect(kinds("tanh")).toEqual(["saturated"]);
    expect(nodeWarnings(samples, { step: 1, node: "inner", block: "blk", where: "output" }, "blk")[0].kind).toBe("nan");
  });
});

describe("drawing", () => {
  it("draws a sparkline across the box with gaps at missing values", () => {
    expect(sparklinePath([1, 3], 100, 10)).toBe("M0.0,10.0L100.0,0.0");
    expect(sparklinePath([1, null, 3], 100, 10)).toBe("M0.0,10.0M100.0,0.0");
    expect(sparklinePath([1, 10, 100], 100, 10, true)).toBe("M0.0,10.0L50.0,5.0L100.0,0.0");
    expect(sparklinePath([null], 100, 10)).toBe("");
  });

  it("turns histograms into shares of each batch, and labels the open-ended bins", () => {
    const rows = heatmapRows([
      { step: 1, epoch: 0, wall_time: 0, stats: { histogram: [1, 3, 0] } },
      { step: 2, epoch: 0, wall_time: 0, stats: { mean: 1 } },
    ]);
    expect(rows).toEqual([{ step: 1, shares: [0.25, 0.75, 0] }]);
    expect(binLabels([-1, 0, 1])).toEqual(["< -1", "-1 … 0", "0 … 1", "≥ 1"]);
  });

  it("lays out the editor document as drawn, with the handles its edges use", () => {
    const graph = canvasGraph({
      format: "netforge.editor/1",
      nodes: [
        { id: "x", type: "input", position: { x: 0, y: 0 }, data: { name: "x" } },
        { id: "fc1", type: "dense", position: { x: 0, y: 100 }, data: { label: "hidden" } },
      ],
      edges: [{ id: "e1", source: "x", sourceHandle: "out", target: "fc1", targetHandle: "x" }],
    }, []);
    expect(graph.nodes.map((node) => [node.id, node.data.title, node.data.inputs, node.data.outputs])).toEqual([
      ["x", "x", [], ["out"]], ["fc1", "hidden", ["x"], []],
    ]);
    expect(graph.edges).toEqual([{ id: "e1", source: "x", target: "fc1", sourceHandle: "out", targetHandle: "x" }]);
  });

  it("falls back to a column of the nodes with statistics when the version has no editor document", () => {
    const graph = canvasGraph({ format: "netforge.editor/1", nodes: [], edges: [] }, ["fc1", "act1", "fc2"]);
    expect(graph.nodes.map((node) => node.position.y)).toEqual([0, 110, 220]);
    expect(graph.edges.map((edge) => `${edge.source}->${edge.target}`)).toEqual(["fc1->act1", "act1->fc2"]);
  });
});
