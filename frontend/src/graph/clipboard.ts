// Copy and paste: the selected nodes and the edges among them, pasted with fresh ids (edges
// re-pointed to the copies) and moved so the copy does not hide the original.
import type { EditorDocument } from "../api/types";
import { edgeId, nextId } from "./ids";

export interface Clip {
  nodes: EditorDocument["nodes"];
  edges: EditorDocument["edges"];
}

export function copySelection(document: EditorDocument, selected: Iterable<string>): Clip {
  const ids = new Set(selected);
  return structuredClone({
    nodes: document.nodes.filter((node) => ids.has(node.id)),
    edges: document.edges.filter((edge) => ids.has(edge.source) && ids.has(edge.target)),
  });
}

/** The clip with new node and edge ids not in `taken`, shifted by `offset`. */
export function pasteClip(
  clip: Clip,
  taken: { nodes: Iterable<string>; edges: Iterable<string> },
  offset = { x: 40, y: 40 },
): Clip {
  const usedNodes = new Set(taken.nodes);
  const usedEdges = new Set(taken.edges);
  const renamed = new Map<string, string>();
  const nodes = clip.nodes.map((node) => {
    const id = nextId(node.type, usedNodes);
    usedNodes.add(id);
    renamed.set(node.id, id);
    const data = structuredClone(node.data);
    // Input and output names must stay unique; a copy's name would clash with its original's.
    if ((node.type === "input" || node.type === "output") && typeof data.name === "string") delete data.name;
    return { ...node, id, data, position: { x: node.position.x + offset.x, y: node.position.y + offset.y } };
  });
  const edges = clip.edges.map((edge) => {
    const moved = { ...structuredClone(edge), source: renamed.get(edge.source)!, target: renamed.get(edge.target)! };
    moved.id = edgeId(moved, usedEdges);
    usedEdges.add(moved.id);
    return moved;
  });
  return { nodes, edges };
}
