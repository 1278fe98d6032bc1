// The editor's in-memory graph: React Flow nodes and edges whose data carries exactly what the
// `netforge.editor/1` document stores, so conversion both ways is lossless.
import type { Edge, Node } from "@xyflow/react";
import type { EditorNode } from "../api/types";

export const SPECIAL_TYPES = ["input", "output", "loss"] as const;
export type SpecialType = (typeof SPECIAL_TYPES)[number];

/** The one output handle of an input node and the one input handle of output and loss nodes. */
export const INPUT_HANDLE = "out";
export const SINK_HANDLE = "in";

/** React Flow's node type for every NetForge node (one component draws them all). */
export const NODE_TYPE = "netforge";
export const EDGE_TYPE = "shape";

export interface NodeData extends Record<string, unknown> {
  /** The editor document's `type`: an op name or one of the special types. */
  kind: string;
  /** The editor document's `data`, unchanged (params, label, name, shape, dtype, dataset, role, ...). */
  fields: EditorNode["data"];
}

export interface EdgeData extends Record<string, unknown> {
  /** Other keys of the editor edge's `data` (`order` for variadic ports) ride along. */
  order?: number;
}

export type GraphNode = Node<NodeData, typeof NODE_TYPE>;
export type GraphEdge = Edge<EdgeData, typeof EDGE_TYPE>;

export interface Graph {
  nodes: GraphNode[];
  edges: GraphEdge[];
}

export function isSpecial(kind: string): kind is SpecialType {
  return (SPECIAL_TYPES as readonly string[]).includes(kind);
}

/** Which dataset an input node is bound to and as what (see the inspector). */
export type InputRole = "features" | "labels";
export const ROLE_INPUT_NAME: Record<InputRole, string> = { features: "x", labels: "y" };
