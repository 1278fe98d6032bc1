// Conversion between the canvas (React Flow nodes and edges) and the saved editor document
// (`netforge.editor/1`, see webapp/projects/converter.py), and the checks an imported file gets.
import type { EditorDocument, EditorEdge, EditorNode } from "../api/types";
import { EDGE_TYPE, NODE_TYPE, type Graph, type GraphEdge, type GraphNode } from "./types";

export const EDITOR_FORMAT = "netforge.editor/1";

export function nodeFromEditor(node: EditorNode): GraphNode {
  return {
    id: node.id,
    type: NODE_TYPE,
    position: { x: node.position?.x ?? 0, y: node.position?.y ?? 0 },
    data: { kind: node.type, fields: structuredClone(node.data ?? {}) },
  };
}

export function edgeFromEditor(edge: EditorEdge): GraphEdge {
  return {
    id: edge.id,
    type: EDGE_TYPE,
    source: edge.source,
    target: edge.target,
    sourceHandle: edge.sourceHandle ?? null,
    targetHandle: edge.targetHandle ?? null,
    data: structuredClone(edge.data ?? {}),
  };
}

export function fromDocument(document: EditorDocument): Graph {
  return { nodes: document.nodes.map(nodeFromEditor), edges: document.edges.map(edgeFromEditor) };
}

export function nodeToEditor(node: GraphNode): EditorNode {
  return {
    id: node.id,
    type: node.data.kind,
    position: { x: Math.round(node.position.x), y: Math.round(node.position.y) },
    data: structuredClone(node.data.fields),
  };
}

export function edgeToEditor(edge: GraphEdge): EditorEdge {
  const out: EditorEdge = { id: edge.id, source: edge.source, sourceHandle: edge.sourceHandle ?? null,
    target: edge.target, targetHandle: edge.targetHandle ?? null };
  if (edge.data && Object.keys(edge.data).length > 0) out.data = structuredClone(edge.data);
  return out;
}

export function toDocument(graph: Graph, metadata?: Record<string, unknown>): EditorDocument {
  const document: EditorDocument = {
    format: EDITOR_FORMAT,
    nodes: graph.nodes.map(nodeToEditor),
    edges: graph.edges.map(edgeToEditor),
  };
  if (metadata && Object.keys(metadata).length > 0) document.metadata = structuredClone(metadata);
  return document;
}

export function emptyDocument(): EditorDocument {
  return { format: EDITOR_FORMAT, nodes: [], edges: [] };
}

export type ParseResult = { ok: true; document: EditorDocument } | { ok: false; error: string };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Check that a file's text is an editor document the canvas can draw. The server validates the
 *  graph itself; this only refuses what the canvas cannot even show, with a message that says where. */
export function parseEditorDocument(text: string): ParseResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { ok: false, error: `not JSON: ${(error as Error).message}` };
  }
  if (!isObject(value)) return { ok: false, error: "the file must hold a JSON object (an editor document)" };
  if (value.format !== EDITOR_FORMAT) {
    const found = value.format === undefined ? "no \"format\"" : `format ${JSON.stringify(value.format)}`;
    return { ok: false, error: `expected "format": "${EDITOR_FORMAT}", found ${found}` };
  }
  if (!Array.isArray(value.nodes)) return { ok: false, error: "\"nodes\" must be a list" };
  const edges = value.edges ?? [];
  if (!Array.isArray(edges)) return { ok: false, error: "\"edges\" must be a list" };
  const ids = new Set<string>();
  for (const [index, node] of value.nodes.entries()) {
    if (!isObject(node)) return { ok: false, error: `nodes[${index}] must be an object` };
    if (typeof node.id !== "string" || !node.id) return { ok: false, error: `nodes[${index}] needs a string "id"` };
    if (ids.has(node.id)) return { ok: false, error: `two nodes have the id "${node.id}"` };
    ids.add(node.id);
    if (typeof node.type !== "string" || !node.type) return { ok: false, error: `node "${node.id}" needs a string "type"` };
    const position = node.position;
    if (position !== undefined && !(isObject(position) && typeof position.x === "number" && typeof position.y === "number")) {
      return { ok: false, error: `node "${node.id}": "position" must be {"x": number, "y": number}` };
    }
    if (node.data !== undefined && node.data !== null && !isObject(node.data)) {
      return { ok: false, error: `node "${node.id}": "data" must be an object` };
    }
  }
  const edgeIds = new Set<string>();
  for (const [index, edge] of edges.entries()) {
    if (!isObject(edge)) return { ok: false, error: `edges[${index}] must be an object` };
    if (typeof edge.id !== "string" || !edge.id) return { ok: false, error: `edges[${index}] needs a string "id"` };
    if (edgeIds.has(edge.id)) return { ok: false, error: `two edges have the id "${edge.id}"` };
    edgeIds.add(edge.id);
    for (const end of ["source", "target"] as const) {
      if (typeof edge[end] !== "string" || !ids.has(edge[end] as string)) {
        return { ok: false, error: `edge "${edge.id}": ${end} ${JSON.stringify(edge[end])} is not a node of the file` };
      }
    }
  }
  const nodes = (value.nodes as Record<string, unknown>[]).map((node) => ({
    ...node,
    position: (node.position as EditorNode["position"] | undefined) ?? { x: 0, y: 0 },
    data: (node.data as EditorNode["data"] | undefined) ?? {},
  })) as EditorNode[];
  return { ok: true, document: { ...(value as unknown as EditorDocument), nodes, edges: edges as EditorEdge[] } };
}

/** A stable text form of the parts of a document that make it what it is (for "unsaved changes"
 *  and history: selection, sizes and the viewport do not count). */
export function documentKey(document: EditorDocument): string {
  return JSON.stringify({ nodes: document.nodes, edges: document.edges, metadata: document.metadata ?? null });
}
