// The difference between two versions drawn as one read-only graph: the union of both, added nodes
// and edges green, removed ones red and ghosted where they used to be, changed nodes amber with
// their changed settings listed on the node.
import { Controls, Handle, Position, ReactFlow, ReactFlowProvider, type Edge, type Node, type NodeProps } from "@xyflow/react";
import { memo, useMemo } from "react";
import type { EditorDocument, OpSchema } from "../api/types";
import { describeChange, diffGraph, fieldLabel, type DiffNode, type DiffStatus } from "../graph/diff";
import { formatShape } from "../graph/format";
import { keyParams } from "../graph/params";
import { Modal } from "./dialogs";

type DiffFlowNode = Node<{ node: DiffNode; op?: OpSchema }, "diff">;

const STATUS_WORD: Record<DiffStatus, string> = { added: "added", removed: "removed", changed: "changed", unchanged: "" };
const EDGE_STYLE: Record<DiffNode["status"], React.CSSProperties> = {
  added: { stroke: "var(--ok)", strokeWidth: 2.5 },
  removed: { stroke: "var(--danger)", strokeWidth: 2, strokeDasharray: "6 4", opacity: 0.55 },
  changed: {},
  unchanged: { stroke: "#94a3b8", strokeWidth: 1.5 },
};

function DiffNodeView({ data }: NodeProps<DiffFlowNode>) {
  const { node, op } = data;
  const fields = node.data;
  const label = typeof fields.label === "string" && fields.label ? fields.label
    : (node.type === "input" || node.type === "output") && typeof fields.name === "string" ? fields.name : null;
  const changed = new Set(node.changes.map((change) => fieldLabel(change.field)));
  const unchangedParams = keyParams(op, (fields.params as Record<string, unknown> | undefined) ?? {})
    .filter(([name]) => !changed.has(name));
  const changes = node.changes.map(describeChange);
  const title = [`${node.id} (${node.type})${STATUS_WORD[node.status] ? `: ${STATUS_WORD[node.status]}` : ""}`, ...changes].join("\n");
  return (
    <div className={`nf-diff-node ${node.status}`} title={title} data-testid="diff-node" data-id={node.id} data-status={node.status}>
      <div className="nf-diff-node-header">
        <strong className="mono">{node.id}</strong>
        <span className="muted mono">{node.type}</span>
        {node.status !== "unchanged" && <span className={`nf-diff-badge ${node.status}`}>{STATUS_WORD[node.status]}</span>}
      </div>
      <div className="nf-diff-node-ports">
        <div>
          {node.inputs.map((port) => (
            <div key={port} className="nf-diff-port">
              <Handle type="target" position={Position.Left} id={port} isConnectable={false} />
              {port}
            </div>
          ))}
        </div>
        <div className="nf-diff-node-outputs">
          {node.outputs.map((port) => (
            <div key={port} className="nf-diff-port">
              {port}
              <Handle type="source" position={Position.Right} id={port} isConnectable={false} />
            </div>
          ))}
        </div>
      </div>
      {(label || node.type === "input" || unchangedParams.length > 0 || changes.length > 0) && (
        <div className="nf-diff-node-body">
          {label && <div className="muted">{label}</div>}
          {node.type === "input" && Array.isArray(fields.shape) && !changed.has("shape") && (
            <div className="mono muted">{formatShape([null, ...(fields.shape as number[])])} {String(fields.dtype ?? "float32")}</div>
          )}
          {unchangedParams.map(([name, value]) => <div key={name} className="mono muted">{name} {value}</div>)}
          {changes.length > 0 && (
            <ul className="nf-diff-node-changes" data-testid="diff-node-changes">
              {changes.map((change) => <li key={change} className="mono">{change}</li>)}
            </ul>
          )}
        </div>
      )}
    </div>
  );
}

const DIFF_NODE_TYPES = { diff: memo(DiffNodeView) };

export function VersionDiffDialog({ before, after, beforeLabel, afterLabel, lookup, onClose }: {
  before: EditorDocument;
  after: EditorDocument;
  beforeLabel: string;
  afterLabel: string;
  lookup(name: string): OpSchema | undefined;
  onClose(): void;
}) {
  const graph = useMemo(() => diffGraph(before, after, lookup), [before, after, lookup]);
  // Uncontrolled and built once: the dialog shows a snapshot, and React Flow measures nodes once.
  const nodes: DiffFlowNode[] = useMemo(() => graph.nodes.map((node) => ({
    id: node.id, type: "diff", position: node.position, data: { node, op: lookup(node.type) },
    draggable: false, connectable: false, selectable: false, zIndex: node.status === "removed" ? 0 : 1,
  })), [graph, lookup]);
  const edges: Edge[] = useMemo(() => graph.edges.map((edge) => ({
    id: edge.id, source: edge.source, sourceHandle: edge.sourceHandle, target: edge.target, targetHandle: edge.targetHandle,
    style: EDGE_STYLE[edge.status], className: `nf-diff-edge ${edge.status}`, zIndex: edge.status === "removed" ? 0 : 1,
    selectable: false, focusable: false,
  })), [graph]);
  const { diff } = graph;
  const counts = [
    [diff.addedNodes.length, "added", "added"],
    [diff.removedNodes.length, "removed", "removed"],
    [diff.changedNodes.length, "changed", "changed"],
  ] as const;

  return (
    <Modal title={`Changes from ${beforeLabel} to ${afterLabel}`} onClose={onClose} wide="extra">
      <div className="nf-diff-legend" data-testid="diff-legend">
        {counts.map(([count, word, status]) => (
          <span key={status} className={`nf-diff-badge ${status}`}>{count} node{count === 1 ? "" : "s"} {word}</span>
        ))}
        <span className="nf-diff-badge added">{diff.addedEdges.length} edge{diff.addedEdges.length === 1 ? "" : "s"} added</span>
        <span className="nf-diff-badge removed">{diff.removedEdges.length} edge{diff.removedEdges.length === 1 ? "" : "s"} removed</span>
        <span className="muted nf-help">Laid out as in {afterLabel}; removed nodes where {beforeLabel} had them, moved down where a node of {afterLabel} now stands. Hover a node for its changes.</span>
      </div>
      <div className="nf-diff-canvas" data-testid="diff-canvas">
        <ReactFlowProvider>
          <ReactFlow defaultNodes={nodes} defaultEdges={edges} nodeTypes={DIFF_NODE_TYPES} fitView fitViewOptions={{ padding: 0.08 }}
            minZoom={0.1} proOptions={{ hideAttribution: true }} nodesDraggable={false} nodesConnectable={false} elementsSelectable={false}>
            <Controls showInteractive={false} />
          </ReactFlow>
        </ReactFlowProvider>
      </div>
      <div className="nf-form-actions"><button onClick={onClose}>Close</button></div>
    </Modal>
  );
}
