// What changed between two editor documents: nodes added, removed or changed (type, params, label,
// input settings), and edges added or removed. Positions do not count; edges are matched by what
// they connect, not by id, so a redrawn edge is not a change.
import type { EditorDocument, EditorEdge, EditorNode } from "../api/types";

export interface FieldChange {
  field: string; // "type", "params.units", "label", "shape", ...
  before: unknown;
  after: unknown;
}

export interface NodeChange {
  id: string;
  type: string;
  changes: FieldChange[];
}

export interface GraphDiff {
  addedNodes: EditorNode[];
  removedNodes: EditorNode[];
  changedNodes: NodeChange[];
  addedEdges: EditorEdge[];
  removedEdges: EditorEdge[];
}

function edgeKey(edge: EditorEdge): string {
  return `${edge.source}.${edge.sourceHandle ?? ""}->${edge.target}.${edge.targetHandle ?? ""}`;
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function flatFields(node: EditorNode): Record<string, unknown> {
  const fields: Record<string, unknown> = { type: node.type };
  for (const [key, value] of Object.entries(node.data ?? {})) {
    if (key === "params" && value && typeof value === "object") {
      for (const [name, param] of Object.entries(value as Record<string, unknown>)) fields[`params.${name}`] = param;
    } else {
      fields[key] = value;
    }
  }
  return fields;
}

export function diffDocuments(before: EditorDocument, after: EditorDocument): GraphDiff {
  const beforeNodes = new Map(before.nodes.map((node) => [node.id, node]));
  const afterNodes = new Map(after.nodes.map((node) => [node.id, node]));
  const diff: GraphDiff = { addedNodes: [], removedNodes: [], changedNodes: [], addedEdges: [], removedEdges: [] };
  for (const node of after.nodes) if (!beforeNodes.has(node.id)) diff.addedNodes.push(node);
  for (const node of before.nodes) {
    const other = afterNodes.get(node.id);
    if (!other) {
      diff.removedNodes.push(node);
      continue;
    }
    const a = flatFields(node);
    const b = flatFields(other);
    const changes: FieldChange[] = [];
    for (const field of new Set([...Object.keys(a), ...Object.keys(b)])) {
      if (!same(a[field], b[field])) changes.push({ field, before: a[field], after: b[field] });
    }
    if (changes.length) diff.changedNodes.push({ id: node.id, type: other.type, changes });
  }
  const beforeEdges = new Set(before.edges.map(edgeKey));
  const afterEdges = new Set(after.edges.map(edgeKey));
  diff.addedEdges = after.edges.filter((edge) => !beforeEdges.has(edgeKey(edge)));
  diff.removedEdges = before.edges.filter((edge) => !afterEdges.has(edgeKey(edge)));
  return diff;
}

export function isEmptyDiff(diff: GraphDiff): boolean {
  return !diff.addedNodes.length && !diff.removedNodes.length && !diff.changedNodes.length
    && !diff.addedEdges.length && !diff.removedEdges.length;
}
