// Validation's one-click fixes of a graph that does not fit its dataset: what each button says, and
// the graph edit of "insert_reshape" (the store records it as one undo step; "set_view" is a
// change of the dataset, made through the API).
import type { GraphFix } from "../api/types";
import { formatShape } from "./format";
import { edgeId, nextId } from "./ids";
import { EDGE_TYPE, INPUT_HANDLE, NODE_TYPE, type Graph, type GraphEdge, type GraphNode } from "./types";

/** How far right of the input the reshape is drawn (about half a layer: the layout's layers are 240 apart). */
const RESHAPE_OFFSET = { x: 120, y: 70 };

/** The graph with `inputId`'s shape set to `inputShape` and a reshape to `shape` between it and
 *  every node it fed; the reshape's id too. The input node unchanged but for its shape. */
export function insertReshape(graph: Graph, inputId: string, shape: number[], inputShape: number[]): { graph: Graph; reshapeId: string } | null {
  const input = graph.nodes.find((node) => node.id === inputId);
  if (!input || input.data.kind !== "input") return null;
  const reshapeId = nextId("reshape", graph.nodes.map((node) => node.id));
  const reshape: GraphNode = {
    id: reshapeId, type: NODE_TYPE, selected: false,
    position: { x: input.position.x + RESHAPE_OFFSET.x, y: input.position.y + RESHAPE_OFFSET.y },
    data: { kind: "reshape", fields: { params: { shape: [...shape] } } },
  };
  const nodes = [...graph.nodes.map((node) => (node.id === inputId ? { ...node, data: { ...node.data, fields: { ...node.data.fields, shape: [...inputShape] } } } : node)), reshape];
  const fed = (edge: Graph["edges"][number]) => edge.source === inputId && (edge.sourceHandle ?? INPUT_HANDLE) === INPUT_HANDLE;
  const kept = graph.edges.filter((edge) => !fed(edge));
  const taken = kept.map((edge) => edge.id);
  const link = { source: inputId, sourceHandle: INPUT_HANDLE, target: reshapeId, targetHandle: "x" };
  const edges: GraphEdge[] = [...kept, { ...link, id: edgeId(link, taken), type: EDGE_TYPE, data: {} }];
  for (const edge of graph.edges.filter(fed)) {
    const moved = { ...edge, source: reshapeId, sourceHandle: "out" };
    edges.push({ ...moved, id: edgeId(moved, edges.map((other) => other.id)) });
  }
  return { graph: { nodes, edges }, reshapeId };
}

/** What the fix's button says ("insert reshape to [1, 8, 8]", "use the image view", "set units to 10"). */
export function fixLabel(fix: GraphFix): string {
  switch (fix.kind) {
    case "insert_reshape":
      return `insert reshape to [${fix.shape.join(", ")}]`;
    case "set_view":
      return `use the ${fix.view.kind} view${"shape" in fix.view ? ` ${formatShape(fix.view.shape)}` : ""}`;
    case "set_param":
      return `set ${fix.param} to ${fix.value}`;
  }
}
