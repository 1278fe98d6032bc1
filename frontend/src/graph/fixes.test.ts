import { describe, expect, it } from "vitest";
import { fromDocument } from "./document";
import { fixLabel, insertReshape } from "./fixes";
import { mlpDocument } from "./testing";

describe("validation's fixes", () => {
  it("inserts a reshape between an input and every node it fed, the input taking the dataset's shape", () => {
    const graph = fromDocument(mlpDocument());
    graph.edges.push({ id: "x-out", type: "shape", source: "x", sourceHandle: "out", target: "output_1", targetHandle: "in" });
    const inserted = insertReshape(graph, "x", [1, 8, 8], [64])!;
    expect(inserted.reshapeId).toBe("reshape_1");
    const { nodes, edges } = inserted.graph;
    expect(nodes.find((node) => node.id === "x")!.data.fields).toEqual({ name: "x", shape: [64], dtype: "float32" });
    const reshape = nodes.find((node) => node.id === "reshape_1")!;
    expect(reshape.data).toEqual({ kind: "reshape", fields: { params: { shape: [1, 8, 8] } } });
    expect(reshape.position).toEqual({ x: 120, y: 70 });
    const from = (source: string) => edges.filter((edge) => edge.source === source).map((edge) => `${edge.id} ${edge.target}.${edge.targetHandle}`);
    expect(from("x")).toEqual(["x.out->reshape_1.x reshape_1.x"]);
    expect(from("reshape_1")).toEqual(["reshape_1.out->dense_1.x dense_1.x", "reshape_1.out->output_1.in output_1.in"]);
    expect(edges).toHaveLength(graph.edges.length + 1);
    expect(graph.nodes.find((node) => node.id === "x")!.data.fields.shape).toEqual([64]); // the graph given is not changed
  });

  it("inserts nothing after a node that is not an input", () => {
    expect(insertReshape(fromDocument(mlpDocument()), "dense_1", [1, 8, 8], [64])).toBeNull();
  });

  it("says what each fix does", () => {
    expect(fixLabel({ kind: "insert_reshape", shape: [1, 8, 8], input_shape: [64] })).toBe("insert reshape to [1, 8, 8]");
    expect(fixLabel({ kind: "set_view", dataset: 3, view: { kind: "image", shape: [1, 8, 8], layout: "chw" } })).toBe("use the image view 1×8×8");
    expect(fixLabel({ kind: "set_view", dataset: 3, view: { kind: "flat" } })).toBe("use the flat view");
    expect(fixLabel({ kind: "set_param", param: "units", value: 10 })).toBe("set units to 10");
  });
});
