// What changed between two editor documents: nodes added, removed or changed (type, params, label,
// input settings), and edges added or removed. Positions do not count; edges are matched by what
// they connect, not by id, so a redrawn edge is not a change. `diffGraph` lays the two documents
// over each other, for drawing the difference as one graph.
import type { EditorDocument, EditorEdge, EditorNode } from "../api/types";
import { estimateDiffNodeSize, nudgeRemovedNodes } from "./diffLayout";
import { formatValue } from "./format";
import { keyParams } from "./params";
import { nodePorts, type OpLookup } from "./ports";

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

export type DiffStatus = "added" | "removed" | "changed" | "unchanged";

export interface DiffNode {
  id: string;
  type: string;
  status: DiffStatus;
  /** The newer document's position, or the older one's for a removed node (moved down, clear of
   *  the newer document's nodes, where one of them now stands there). */
  position: { x: number; y: number };
  /** The node's settings in the newer document (the older one's for a removed node). */
  data: EditorNode["data"];
  /** What changed, field by field (empty unless `status` is "changed"). */
  changes: FieldChange[];
  /** Port names to draw, in catalog order, then any other name an edge of the union uses. */
  inputs: string[];
  outputs: string[];
}

export interface DiffEdge {
  /** Unique within the union (edges are matched by what they connect, so ids may clash). */
  id: string;
  source: string;
  sourceHandle: string | null;
  target: string;
  targetHandle: string | null;
  status: Exclude<DiffStatus, "changed">;
}

export interface DiffGraph {
  nodes: DiffNode[];
  edges: DiffEdge[];
  diff: GraphDiff;
}

/**
 * The union of two documents' graphs, each node and edge marked added, removed, changed or
 * unchanged, laid out as the newer document (`after`) places its nodes, removed nodes where the
 * older one had them unless that spot is now taken (see `nudgeRemovedNodes`). Removed nodes come
 * first, so that drawn in order they lie underneath.
 */
export function diffGraph(before: EditorDocument, after: EditorDocument, lookup: OpLookup): DiffGraph {
  const diff = diffDocuments(before, after);
  const added = new Set(diff.addedNodes.map((node) => node.id));
  const changes = new Map(diff.changedNodes.map((node) => [node.id, node.changes]));

  const edges: DiffEdge[] = [];
  const seen = new Set<string>();
  const addEdge = (edge: EditorEdge, status: DiffEdge["status"]) => {
    const id = status === "removed" ? `removed:${edgeKey(edge)}` : edgeKey(edge);
    if (seen.has(id)) return; // the same connection twice in one document
    seen.add(id);
    edges.push({
      id, source: edge.source, sourceHandle: edge.sourceHandle ?? null,
      target: edge.target, targetHandle: edge.targetHandle ?? null, status,
    });
  };
  const addedEdges = new Set(diff.addedEdges);
  for (const edge of after.edges) addEdge(edge, addedEdges.has(edge) ? "added" : "unchanged");
  for (const edge of diff.removedEdges) addEdge(edge, "removed");

  const node = (source: EditorNode, status: DiffStatus): DiffNode => {
    const ports = nodePorts(source.type, source.data ?? {}, lookup);
    const inputs = ports.inputs.map((port) => port.name);
    const outputs = ports.outputs.map((port) => port.name);
    for (const edge of edges) {
      if (edge.target === source.id && edge.targetHandle && !inputs.includes(edge.targetHandle)) inputs.push(edge.targetHandle);
      if (edge.source === source.id && edge.sourceHandle && !outputs.includes(edge.sourceHandle)) outputs.push(edge.sourceHandle);
    }
    return {
      id: source.id, type: source.type, status, position: { x: source.position?.x ?? 0, y: source.position?.y ?? 0 },
      data: source.data ?? {}, changes: changes.get(source.id) ?? [], inputs, outputs,
    };
  };
  const nodes = [
    ...diff.removedNodes.map((removed) => node(removed, "removed")),
    ...after.nodes.map((present) => node(present, added.has(present.id) ? "added" : changes.has(present.id) ? "changed" : "unchanged")),
  ];
  const sizeOf = (drawn: DiffNode) => estimateDiffNodeSize(
    drawn, keyParams(lookup(drawn.type), (drawn.data.params as Record<string, unknown> | undefined) ?? {}).length);
  return { nodes: nudgeRemovedNodes(nodes, sizeOf), edges, diff };
}

/** A changed field as the diff shows it: "params.units" reads "units". */
export function fieldLabel(field: string): string {
  return field.startsWith("params.") ? field.slice("params.".length) : field;
}

/** One side of a change: a value, or "unset" where that side lacks the field. */
export function formatChangeValue(value: unknown): string {
  return value === undefined ? "unset" : formatValue(value);
}

/** "units: 10 → 32". */
export function describeChange(change: FieldChange): string {
  return `${fieldLabel(change.field)}: ${formatChangeValue(change.before)} → ${formatChangeValue(change.after)}`;
}
