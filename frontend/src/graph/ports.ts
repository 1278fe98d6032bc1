// Which ports a node has and which connections the canvas accepts: dtype classes, ranks (when
// validation has inferred the source's shape), one edge per non-variadic input, no self loops, no
// cycles. The server checks shapes fully; this refuses early what can never work, with a reason
// the user can act on.
import type { OpSchema } from "../api/types";
import { INPUT_HANDLE, SINK_HANDLE, type Graph } from "./types";

export type DtypeClass = "float" | "int" | "any";

/** Ranks a port takes, batch axis included: [min, max], max null for no upper bound. */
export type RankRange = [number, number | null];

export interface Port {
  name: string;
  dtype: DtypeClass;
  variadic: boolean;
  optional: boolean;
  doc: string;
  /** Absent: any rank. */
  rank?: RankRange;
}

export interface NodePorts {
  inputs: Port[];
  outputs: Port[];
}

export type OpLookup = (name: string) => OpSchema | undefined;

/** "float32" -> "float", "int64" -> "int"; classes pass through; anything else is "any". */
export function dtypeClass(dtype: string | undefined | null): DtypeClass {
  if (!dtype) return "any";
  if (dtype === "float" || dtype.startsWith("float")) return "float";
  if (dtype === "int" || dtype.startsWith("int") || dtype.startsWith("uint")) return "int";
  return "any";
}

function port(name: string, dtype: DtypeClass, doc = "", variadic = false, optional = false, rank?: RankRange): Port {
  return rank ? { name, dtype, variadic, optional, doc, rank } : { name, dtype, variadic, optional, doc };
}

/** The catalog's `rank`, or undefined (any rank) when it is absent or not a [min, max] pair. */
export function rankRange(value: unknown): RankRange | undefined {
  if (!Array.isArray(value) || value.length !== 2) return undefined;
  const [min, max] = value as unknown[];
  if (!Number.isInteger(min) || (min as number) < 0) return undefined;
  if (max === null) return [min as number, null];
  if (!Number.isInteger(max) || (max as number) < (min as number)) return undefined;
  return [min as number, max as number];
}

export function rankAllowed(rank: number, range: RankRange | undefined): boolean {
  if (!range) return true;
  return rank >= range[0] && (range[1] === null || rank <= range[1]);
}

/** [4, 4] -> "4-D", [2, 4] -> "2-D to 4-D", [2, null] -> "2-D or higher". */
export function describeRank(range: RankRange): string {
  const [min, max] = range;
  if (max === min) return `${min}-D`;
  if (max === null) return `${min}-D or higher`;
  return `${min}-D to ${max}-D`;
}

/** `[null, 128]` -> "[?, 128]": the unknown (batch) axis as "?". */
export function describeShape(shape: readonly (number | null)[]): string {
  return `[${shape.map((size) => (size === null ? "?" : String(size))).join(", ")}]`;
}

/** The ports of a node of `kind` (an op name or a special type); unknown ops have none. */
export function nodePorts(kind: string, fields: Record<string, unknown>, lookup: OpLookup): NodePorts {
  if (kind === "input") {
    return { inputs: [], outputs: [port(INPUT_HANDLE, dtypeClass((fields.dtype as string | undefined) ?? "float32"))] };
  }
  if (kind === "output" || kind === "loss") return { inputs: [port(SINK_HANDLE, "any")], outputs: [] };
  const op = lookup(kind);
  if (!op) return { inputs: [], outputs: [] };
  return {
    inputs: op.inputs.map((p) => port(p.name, dtypeClass(p.dtype), p.doc, !!p.variadic, !!p.optional, rankRange(p.rank))),
    outputs: op.outputs.map((p) => port(p.name, dtypeClass(p.dtype), p.doc, false, false, rankRange(p.rank))),
  };
}

export function dtypesCompatible(source: DtypeClass, target: DtypeClass): boolean {
  return source === "any" || target === "any" || source === target;
}

/** Is `to` reachable from `from` along the graph's edges? */
export function reaches(graph: Pick<Graph, "edges">, from: string, to: string): boolean {
  const next = new Map<string, string[]>();
  for (const edge of graph.edges) {
    const list = next.get(edge.source) ?? [];
    list.push(edge.target);
    next.set(edge.source, list);
  }
  const seen = new Set<string>();
  const stack = [from];
  while (stack.length) {
    const node = stack.pop()!;
    if (node === to) return true;
    if (seen.has(node)) continue;
    seen.add(node);
    stack.push(...(next.get(node) ?? []));
  }
  return false;
}

export interface ConnectionRequest {
  source: string;
  sourceHandle?: string | null;
  target: string;
  targetHandle?: string | null;
}

export type ConnectionCheck = { ok: true } | { ok: false; reason: string };

/** What the latest validation inferred for a source port; either part may be unknown. */
export interface InferredTensor {
  dtype?: string | null;
  shape?: readonly (number | null)[] | null;
}

/**
 * Whether the canvas accepts an edge. `inferred` (optional) is what validation inferred for the
 * source port: its dtype is more precise than the catalog's class ("any" outputs), and its shape
 * lets a port that takes only some ranks refuse the others. Unknown shapes are let through.
 */
export function checkConnection(
  graph: Graph,
  connection: ConnectionRequest,
  lookup: OpLookup,
  inferred?: InferredTensor | null,
): ConnectionCheck {
  const { source, target } = connection;
  if (source === target) return { ok: false, reason: "a node cannot feed itself" };
  const sourceNode = graph.nodes.find((node) => node.id === source);
  const targetNode = graph.nodes.find((node) => node.id === target);
  if (!sourceNode || !targetNode) return { ok: false, reason: "both ends must be nodes of the graph" };
  const sourcePorts = nodePorts(sourceNode.data.kind, sourceNode.data.fields, lookup);
  const targetPorts = nodePorts(targetNode.data.kind, targetNode.data.fields, lookup);
  const out = sourcePorts.outputs.find((p) => p.name === (connection.sourceHandle ?? sourcePorts.outputs[0]?.name));
  const into = targetPorts.inputs.find((p) => p.name === (connection.targetHandle ?? targetPorts.inputs[0]?.name));
  if (!out) return { ok: false, reason: `'${source}' has no output port '${connection.sourceHandle ?? ""}'` };
  if (!into) return { ok: false, reason: `'${target}' has no input port '${connection.targetHandle ?? ""}'` };
  const fromClass = inferred?.dtype ? dtypeClass(inferred.dtype) : out.dtype;
  if (!dtypesCompatible(fromClass, into.dtype)) {
    return { ok: false, reason: `port '${into.name}' of '${target}' takes ${into.dtype} tensors, '${source}' gives ${fromClass}` };
  }
  const shape = inferred?.shape;
  if (into.rank && Array.isArray(shape) && !rankAllowed(shape.length, into.rank)) {
    return {
      ok: false,
      reason: `port '${into.name}' of '${target}' takes ${describeRank(into.rank)} tensors, '${source}' gives ${describeShape(shape)} (${shape.length}-D)`,
    };
  }
  const taken = graph.edges.filter((edge) => edge.target === target && (edge.targetHandle ?? into.name) === into.name);
  if (taken.some((edge) => edge.source === source && (edge.sourceHandle ?? out.name) === out.name)) {
    return { ok: false, reason: "these ports are already connected" };
  }
  if (!into.variadic && taken.length > 0) {
    return { ok: false, reason: `port '${into.name}' of '${target}' already has an input from '${taken[0].source}'; delete that edge first` };
  }
  if (reaches(graph, target, source)) {
    return { ok: false, reason: `that would make a cycle: '${target}' already feeds '${source}'` };
  }
  return { ok: true };
}
