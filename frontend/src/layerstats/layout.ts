// The read-only canvas's nodes and edges: the run's editor document as drawn, or, for a graph
// saved without one (made over the API), a column of the nodes that have statistics.
import type { EditorDocument } from "../api/types";

export interface LayerNodeData extends Record<string, unknown> {
  kind: string;
  title: string;
  inputs: string[];
  outputs: string[];
}

export interface CanvasNode {
  id: string;
  type: "layer";
  position: { x: number; y: number };
  data: LayerNodeData;
}

export interface CanvasEdge {
  id: string;
  source: string;
  target: string;
  sourceHandle: string | null;
  targetHandle: string | null;
}

export const COLUMN_SPACING = 110;

export function canvasGraph(document: EditorDocument | null | undefined, statNodes: string[]): { nodes: CanvasNode[]; edges: CanvasEdge[] } {
  if (!document || !Array.isArray(document.nodes) || !document.nodes.length) {
    return {
      nodes: statNodes.map((id, index) => ({ id, type: "layer", position: { x: 0, y: index * COLUMN_SPACING },
        data: { kind: "", title: id, inputs: index ? ["in"] : [], outputs: index < statNodes.length - 1 ? ["out"] : [] } })),
      edges: statNodes.slice(1).map((id, index) => ({ id: `e${index}`, source: statNodes[index], target: id, sourceHandle: "out", targetHandle: "in" })),
    };
  }
  const edges = (document.edges ?? []).map((edge) => ({ id: edge.id, source: edge.source, target: edge.target,
    sourceHandle: edge.sourceHandle ?? null, targetHandle: edge.targetHandle ?? null }));
  const handles = (id: string, side: "source" | "target") => [...new Set(edges
    .filter((edge) => edge[side] === id)
    .map((edge) => (side === "source" ? edge.sourceHandle : edge.targetHandle) ?? ""))];
  const nodes = document.nodes.map((node) => {
    const label = typeof node.data?.label === "string" && node.data.label ? node.data.label : null;
    const name = typeof node.data?.name === "string" && node.data.name ? node.data.name : null;
    const title = label ?? ((node.type === "input" || node.type === "output") ? name ?? node.id : node.id);
    return { id: node.id, type: "layer" as const, position: { x: node.position?.x ?? 0, y: node.position?.y ?? 0 },
      data: { kind: node.type, title, inputs: handles(node.id, "target"), outputs: handles(node.id, "source") } };
  });
  return { nodes, edges };
}
