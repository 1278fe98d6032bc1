// Small modal dialogs of the editor: saving a version, a block's inner graph.
import { Controls, Handle, Position, ReactFlow, ReactFlowProvider, type Edge, type Node, type NodeProps } from "@xyflow/react";
import { useEffect, useMemo, useRef, useState, type FormEvent, type ReactNode } from "react";
import type { OpSchema } from "../api/types";
import { blockDiagram, type BlockDiagram, type DiagramNode } from "../graph/blockDiagram";

export function Modal({ title, onClose, children, wide }: { title: string; onClose(): void; children: ReactNode; wide?: boolean | "extra" }) {
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.key === "Escape") onClose();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [onClose]);
  // Everything behind the dialog is inert while it is open: not focusable, not read out (a modal
  // dialog, for keyboards and screen readers too, not only for the mouse).
  const backdrop = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const made: Element[] = [];
    for (let element: HTMLElement | null = backdrop.current; element && element !== document.body; element = element.parentElement) {
      for (const sibling of element.parentElement?.children ?? []) {
        if (sibling !== element && !sibling.hasAttribute("inert") && sibling.tagName !== "SCRIPT") {
          sibling.setAttribute("inert", "");
          made.push(sibling);
        }
      }
    }
    return () => made.forEach((element) => element.removeAttribute("inert"));
  }, []);
  return (
    <div className="nf-modal-backdrop" ref={backdrop} onMouseDown={(event) => event.target === event.currentTarget && onClose()}>
      <div className={`card nf-modal${wide === "extra" ? " extra-wide" : wide ? " wide" : ""}`} role="dialog" aria-modal="true" aria-label={title}>
        <h2>{title}</h2>
        {children}
      </div>
    </div>
  );
}

export function SaveDialog({ nextNumber, errors, busy, onSave, onSaveDraft, onClose }: {
  nextNumber: number;
  errors: string[];
  busy: boolean;
  onSave(message: string): void;
  /** Save whatever the errors, as a draft version that cannot be trained until promoted. */
  onSaveDraft(message: string): void;
  onClose(): void;
}) {
  const [message, setMessage] = useState("");
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.focus(), []);
  function submit(event: FormEvent) {
    event.preventDefault();
    onSave(message.trim());
  }
  return (
    <Modal title={`Save version ${nextNumber}`} onClose={onClose}>
      <form onSubmit={submit} className="nf-form">
        <label>
          What changed
          <input ref={input} data-testid="save-message" value={message} onChange={(event) => setMessage(event.target.value)} placeholder="e.g. wider hidden layer" maxLength={500} />
        </label>
        <p className="muted nf-help">Versions are immutable: runs point at the exact version they trained. A draft keeps work in progress, errors and all; it cannot be trained until it is promoted.</p>
        {errors.length > 0 && (
          <div className="error-box" role="alert">
            <ul>{errors.map((error, index) => <li key={index}>{error}</li>)}</ul>
          </div>
        )}
        <div className="nf-form-actions">
          <button type="button" onClick={onClose}>Cancel</button>
          <button type="button" onClick={() => onSaveDraft(message.trim())} disabled={busy} data-testid="save-draft">Save draft</button>
          <button type="submit" className="primary" disabled={busy}>Save version</button>
        </div>
      </form>
    </Modal>
  );
}

/** A composite block opened: its inner graph drawn (read-only), inner blocks open in turn, and
 * every inner node's parameters as the block sets them. */
export function BlockDialog({ op, lookup, onOpen, onClose }: {
  op: OpSchema;
  lookup(name: string): OpSchema | undefined;
  onOpen(op: OpSchema): void;
  onClose(): void;
}) {
  const diagram = useMemo(() => blockDiagram(op), [op]);
  return (
    <Modal title={`Block ${op.name}`} onClose={onClose} wide="extra">
      <p className="nf-help">{op.doc}</p>
      {!diagram ? <p className="muted">This block does not publish its inner graph.</p> : (
        <>
          <BlockCanvas diagram={diagram} lookup={lookup} onOpen={onOpen} />
          <table className="data" data-testid="block-nodes">
            <thead><tr><th>node</th><th>op</th><th>when</th><th>params</th></tr></thead>
            <tbody>
              {diagram.nodes.filter((node) => node.kind === "op").map((node) => (
                <tr key={node.id}>
                  <td className="mono">{node.id}</td>
                  <td>{node.op}</td>
                  <td className="mono">{node.when ?? ""}</td>
                  <td className="mono">{Object.keys(node.params).length ? JSON.stringify(node.params) : ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <p className="muted nf-help"><span className="mono">$name</span> is the block&apos;s own parameter or input; a dashed edge is the alternative taken when the node before it is switched off.</p>
        </>
      )}
      <div className="nf-form-actions"><button onClick={onClose}>Close</button></div>
    </Modal>
  );
}

const COLUMN_WIDTH = 200;
const ROW_HEIGHT = 84;

type InnerFlowNode = Node<{ node: DiagramNode; inner?: OpSchema; onOpen(op: OpSchema): void }, "inner">;

function InnerNodeView({ data }: NodeProps<InnerFlowNode>) {
  const { node, inner, onOpen } = data;
  const title = node.kind === "op" ? node.op : node.id.split(":")[1];
  return (
    <div className={`nf-inner-node ${node.kind}${node.when ? " conditional" : ""}`} data-testid="block-inner-node" data-id={node.id}>
      {node.kind !== "input" && <Handle type="target" position={Position.Left} isConnectable={false} />}
      <div className="nf-inner-title">
        <strong>{title}</strong>
        {node.kind === "op" && <span className="muted mono"> {node.id}</span>}
      </div>
      {node.kind !== "op" && <div className="muted">{node.kind} of the block</div>}
      {node.when && <div className="muted mono">when {node.when}</div>}
      {inner?.block && <button className="link nodrag" onClick={() => onOpen(inner)} aria-label={`Open block ${inner.name}`}>open ▸</button>}
      {node.kind !== "output" && <Handle type="source" position={Position.Right} isConnectable={false} />}
    </div>
  );
}

const INNER_NODE_TYPES = { inner: InnerNodeView };

// Uncontrolled (default nodes and edges): the editor re-renders this dialog often, and a new
// `nodes` array each time would make React Flow measure every node again, hiding them meanwhile.
function BlockCanvas({ diagram, lookup, onOpen }: { diagram: BlockDiagram; lookup(name: string): OpSchema | undefined; onOpen(op: OpSchema): void }) {
  const nodes: InnerFlowNode[] = diagram.nodes.map((node) => ({
    id: node.id, type: "inner", position: { x: node.column * COLUMN_WIDTH, y: node.row * ROW_HEIGHT },
    data: { node, inner: node.kind === "op" ? lookup(node.op) : undefined, onOpen },
    draggable: false, connectable: false, selectable: false,
  }));
  const edges: Edge[] = diagram.edges.map((edge) => ({
    id: edge.id, source: edge.source, target: edge.target, label: edge.port,
    style: edge.alternative ? { strokeDasharray: "5 4" } : undefined,
  }));
  const rows = Math.max(1, ...diagram.nodes.map((node) => node.row + 1));
  return (
    <div className="nf-block-canvas" style={{ height: Math.min(420, 90 + rows * ROW_HEIGHT) }} data-testid="block-canvas">
      <ReactFlowProvider>
        <ReactFlow defaultNodes={nodes} defaultEdges={edges} nodeTypes={INNER_NODE_TYPES} fitView fitViewOptions={{ padding: 0.04 }}
          proOptions={{ hideAttribution: true }} nodesDraggable={false} nodesConnectable={false} elementsSelectable={false}
          onNodeClick={(_event, clicked) => clicked.data.inner?.block && onOpen(clicked.data.inner)}>
          <Controls showInteractive={false} />
        </ReactFlow>
      </ReactFlowProvider>
    </div>
  );
}
