// A small catalog and graphs for the graph module's tests.
import type { EditorDocument, OpSchema } from "../api/types";
import type { OpLookup } from "./ports";

function op(name: string, inputs: OpSchema["inputs"], extra: Partial<OpSchema> = {}): OpSchema {
  return {
    name, category: "layers", doc: `${name} doc`, params: [], inputs,
    outputs: [{ name: "out", dtype: "float", doc: "" }], is_loss: false, block: false, has_weights: false, ...extra,
  };
}

export const TEST_OPS: OpSchema[] = [
  op("dense", [{ name: "x", dtype: "float", doc: "" }], {
    params: [{ name: "units", type: "int", doc: "output features", required: true, minimum: 1 }], has_weights: true,
  }),
  op("relu", [{ name: "x", dtype: "float", doc: "" }]),
  op("conv2d", [{ name: "x", dtype: "float", doc: "", rank: [4, 4] }], {
    params: [{ name: "filters", type: "int", doc: "output channels", required: true, minimum: 1 }], has_weights: true,
  }),
  op("batch_norm", [{ name: "x", dtype: "float", doc: "", rank: [2, null] }]),
  op("embedding", [{ name: "indices", dtype: "int", doc: "" }]),
  op("concat", [{ name: "x", dtype: "float", doc: "", variadic: true }]),
  op("softmax_cross_entropy", [{ name: "logits", dtype: "float", doc: "" }, { name: "labels", dtype: "any", doc: "" }], { is_loss: true }),
];

export const testLookup: OpLookup = (name) => TEST_OPS.find((candidate) => candidate.name === name);

export function mlpDocument(): EditorDocument {
  return {
    format: "netforge.editor/1",
    nodes: [
      { id: "x", type: "input", position: { x: 0, y: 0 }, data: { name: "x", shape: [64], dtype: "float32" } },
      { id: "y", type: "input", position: { x: 0, y: 110 }, data: { name: "y", shape: [], dtype: "int64" } },
      { id: "dense_1", type: "dense", position: { x: 240, y: 0 }, data: { params: { units: 10 }, label: "logits" } },
      { id: "loss_1", type: "softmax_cross_entropy", position: { x: 480, y: 0 }, data: { params: {} } },
      { id: "output_1", type: "output", position: { x: 480, y: 110 }, data: { name: "prediction" } },
    ],
    edges: [
      { id: "e1", source: "x", sourceHandle: "out", target: "dense_1", targetHandle: "x" },
      { id: "e2", source: "dense_1", sourceHandle: "out", target: "loss_1", targetHandle: "logits" },
      { id: "e3", source: "y", sourceHandle: "out", target: "loss_1", targetHandle: "labels" },
      { id: "e4", source: "dense_1", sourceHandle: "out", target: "output_1", targetHandle: "in" },
    ],
  };
}
