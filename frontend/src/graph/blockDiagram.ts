// A composite block's inner graph (the catalog's `graph` of a block: netforge.block/1 nodes whose
// inputs name other inner nodes, the block's own inputs as `$name`, or alternatives `a|$x` when a
// node is conditional) as a diagram to draw: nodes placed in columns by depth, edges by port.
import type { OpSchema } from "../api/types";

export type DiagramNodeKind = "input" | "op" | "output";

export interface DiagramNode {
  id: string;
  kind: DiagramNodeKind;
  /** The op of an inner node ("input"/"output" for the block's ends). */
  op: string;
  /** Parameters as the block sets them (`$filters`: the block's own parameter). */
  params: Record<string, unknown>;
  /** The block parameter that switches this node on (`when`), if any. */
  when: string | null;
  column: number;
  row: number;
}

export interface DiagramEdge {
  id: string;
  source: string;
  target: string;
  /** The target's input port. */
  port: string;
  /** One of several alternatives (`a|b`): taken when the earlier ones are switched off. */
  alternative: boolean;
}

export interface BlockDiagram {
  nodes: DiagramNode[];
  edges: DiagramEdge[];
}

interface InnerNode {
  id: string;
  op: string;
  params?: Record<string, unknown>;
  inputs?: Record<string, string | string[]>;
  when?: string;
}

const INPUT_PREFIX = "input:";
const OUTPUT_PREFIX = "output:";

function sourcesOf(reference: string): string[] {
  return reference.split("|").map((part) => part.trim()).filter(Boolean)
    .map((part) => (part.startsWith("$") ? INPUT_PREFIX + part.slice(1) : part.split(".")[0]));
}

/** The diagram of `op`'s inner graph, or null when the op is not a block that publishes one. */
export function blockDiagram(op: OpSchema): BlockDiagram | null {
  const graph = op.graph as { nodes?: InnerNode[]; outputs?: Record<string, string> } | undefined;
  if (!op.block || !graph?.nodes) return null;
  const nodes: DiagramNode[] = [];
  const edges: DiagramEdge[] = [];
  const make = (id: string, kind: DiagramNodeKind, opName: string, params: Record<string, unknown> = {}, when: string | null = null) =>
    nodes.push({ id, kind, op: opName, params, when, column: 0, row: 0 });
  for (const port of op.inputs) make(INPUT_PREFIX + port.name, "input", "input");
  for (const node of graph.nodes) make(node.id, "op", node.op, node.params ?? {}, node.when ?? null);
  const known = new Set(nodes.map((node) => node.id));
  const link = (target: string, port: string, reference: string) => {
    const sources = sourcesOf(reference);
    sources.forEach((source, index) => {
      if (!known.has(source)) return;
      edges.push({ id: `${source}->${target}:${port}:${index}`, source, target, port, alternative: index > 0 });
    });
  };
  for (const node of graph.nodes) {
    for (const [port, reference] of Object.entries(node.inputs ?? {})) {
      for (const one of Array.isArray(reference) ? reference : [reference]) link(node.id, port, one);
    }
  }
  for (const [name, reference] of Object.entries(graph.outputs ?? {})) {
    make(OUTPUT_PREFIX + name, "output", "output");
    known.add(OUTPUT_PREFIX + name);
    link(OUTPUT_PREFIX + name, name, reference);
  }
  placeInColumns(nodes, edges);
  return { nodes, edges };
}

/** Column: the longest path from the block's inputs; row: order of appearance within a column. */
function placeInColumns(nodes: DiagramNode[], edges: DiagramEdge[]): void {
  const incoming = new Map<string, string[]>();
  for (const edge of edges) incoming.set(edge.target, [...(incoming.get(edge.target) ?? []), edge.source]);
  const depth = new Map<string, number>();
  const visiting = new Set<string>();
  const depthOf = (id: string): number => {
    const known = depth.get(id);
    if (known !== undefined) return known;
    if (visiting.has(id)) return 0; // a cycle cannot be in a valid block; do not loop on a broken one
    visiting.add(id);
    const value = Math.max(-1, ...(incoming.get(id) ?? []).map(depthOf)) + 1;
    visiting.delete(id);
    depth.set(id, value);
    return value;
  };
  const rows = new Map<number, number>();
  for (const node of nodes) {
    node.column = depthOf(node.id);
    node.row = rows.get(node.column) ?? 0;
    rows.set(node.column, node.row + 1);
  }
  // Outputs sit in one column after everything else.
  const last = Math.max(0, ...nodes.filter((node) => node.kind !== "output").map((node) => node.column));
  let outputRow = 0;
  for (const node of nodes) if (node.kind === "output") { node.column = last + 1; node.row = outputRow++; }
}
