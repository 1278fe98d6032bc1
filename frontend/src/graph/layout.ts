// Auto-layout: the input ELK gets (layered, top to bottom, inputs above and outputs below in catalog order) is
// built here, without ELK itself, so it is testable; the editor runs ELK and applies the result.
import type { EditorDocument } from "../api/types";
import type { Graph } from "./types";

export interface ElkPort {
  id: string;
  layoutOptions?: Record<string, string>;
}

export interface ElkInputNode {
  id: string;
  width: number;
  height: number;
  ports: ElkPort[];
  layoutOptions: Record<string, string>;
}

export interface ElkInputEdge {
  id: string;
  sources: string[];
  targets: string[];
}

export interface ElkInputGraph {
  id: string;
  layoutOptions: Record<string, string>;
  children: ElkInputNode[];
  edges: ElkInputEdge[];
}

export const DEFAULT_NODE_SIZE = { width: 200, height: 90 };

export const LAYOUT_OPTIONS: Record<string, string> = {
  "elk.algorithm": "layered",
  // Top to bottom: a chain stays as wide as one node, so fitting it to the view keeps it readable
  // (left to right, a 9-node chain fitted into the canvas's width was too small to read).
  "elk.direction": "DOWN",
  "elk.layered.spacing.nodeNodeBetweenLayers": "50",
  "elk.spacing.nodeNode": "40",
  "elk.layered.nodePlacement.strategy": "BRANDES_KOEPF",
  "elk.layered.crossingMinimization.semiInteractive": "true",
};

export function portId(node: string, side: "in" | "out", name: string): string {
  return `${node}::${side}::${name}`;
}

/**
 * ELK's input for the graph. `sizes` gives measured node sizes (React Flow's `measured`);
 * `portOrder(node)` the node's input and output port names in drawing order.
 */
export function buildElkGraph(
  graph: Graph,
  portOrder: (nodeId: string) => { inputs: string[]; outputs: string[] },
  sizes: Record<string, { width: number; height: number } | undefined> = {},
): ElkInputGraph {
  const children: ElkInputNode[] = graph.nodes.map((node) => {
    const order = portOrder(node.id);
    const used = graph.edges.filter((edge) => edge.target === node.id || edge.source === node.id);
    // Ports only edges mention (unknown op types) still need to exist for ELK.
    const inputs = [...order.inputs];
    const outputs = [...order.outputs];
    for (const edge of used) {
      if (edge.target === node.id && edge.targetHandle && !inputs.includes(edge.targetHandle)) inputs.push(edge.targetHandle);
      if (edge.source === node.id && edge.sourceHandle && !outputs.includes(edge.sourceHandle)) outputs.push(edge.sourceHandle);
    }
    const size = sizes[node.id] ?? DEFAULT_NODE_SIZE;
    return {
      id: node.id,
      width: size.width,
      height: size.height,
      layoutOptions: { "elk.portConstraints": "FIXED_ORDER" },
      ports: [
        ...inputs.map((name, index) => ({ id: portId(node.id, "in", name), layoutOptions: { "elk.port.side": "NORTH", "elk.port.index": String(index) } })),
        ...outputs.map((name, index) => ({ id: portId(node.id, "out", name), layoutOptions: { "elk.port.side": "SOUTH", "elk.port.index": String(index) } })),
      ],
    };
  });
  const known = new Set(graph.nodes.map((node) => node.id));
  const edges = graph.edges
    .filter((edge) => known.has(edge.source) && known.has(edge.target))
    .map((edge) => ({
      id: edge.id,
      sources: [edge.sourceHandle ? portId(edge.source, "out", edge.sourceHandle) : edge.source],
      targets: [edge.targetHandle ? portId(edge.target, "in", edge.targetHandle) : edge.target],
    }));
  return { id: "root", layoutOptions: LAYOUT_OPTIONS, children, edges };
}

/** Node positions from ELK's result (children with x and y). */
export function positionsFromElk(result: { children?: { id: string; x?: number; y?: number }[] }): Record<string, { x: number; y: number }> {
  const positions: Record<string, { x: number; y: number }> = {};
  for (const child of result.children ?? []) positions[child.id] = { x: Math.round(child.x ?? 0), y: Math.round(child.y ?? 0) };
  return positions;
}

/** The same document with nodes moved (for laying out a document before it is drawn). */
export function withPositions(document: EditorDocument, positions: Record<string, { x: number; y: number }>): EditorDocument {
  return { ...document, nodes: document.nodes.map((node) => (positions[node.id] ? { ...node, position: positions[node.id] } : node)) };
}
