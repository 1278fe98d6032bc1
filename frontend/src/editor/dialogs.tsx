// Small modal dialogs of the editor: saving a version, a block's inner graph.
import { useEffect, useRef, useState, type FormEvent, type ReactNode } from "react";
import type { OpSchema } from "../api/types";

export function Modal({ title, onClose, children, wide }: { title: string; onClose(): void; children: ReactNode; wide?: boolean }) {
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.key === "Escape") onClose();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [onClose]);
  return (
    <div className="nf-modal-backdrop" onMouseDown={(event) => event.target === event.currentTarget && onClose()}>
      <div className={`card nf-modal${wide ? " wide" : ""}`} role="dialog" aria-modal="true" aria-label={title}>
        <h2>{title}</h2>
        {children}
      </div>
    </div>
  );
}

export function SaveDialog({ nextNumber, errors, busy, onSave, onClose }: {
  nextNumber: number;
  errors: string[];
  busy: boolean;
  onSave(message: string): void;
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
        <p className="muted nf-help">Versions are immutable: runs point at the exact version they trained.</p>
        {errors.length > 0 && (
          <div className="error-box" role="alert">
            <ul>{errors.map((error, index) => <li key={index}>{error}</li>)}</ul>
          </div>
        )}
        <div className="nf-form-actions">
          <button type="button" onClick={onClose}>Cancel</button>
          <button type="submit" className="primary" disabled={busy}>Save version</button>
        </div>
      </form>
    </Modal>
  );
}

interface InnerNode {
  id: string;
  op: string;
  params?: Record<string, unknown>;
  inputs?: Record<string, string | string[]>;
}

/** A block's inner graph (netforge.graph/1) as a read-only table, node by node in order. */
export function BlockDialog({ op, onClose }: { op: OpSchema; onClose(): void }) {
  const graph = op.graph as { inputs?: Record<string, { shape?: unknown }>; nodes?: InnerNode[]; outputs?: Record<string, string> } | undefined;
  return (
    <Modal title={`Block ${op.name}`} onClose={onClose} wide>
      <p className="nf-help">{op.doc}</p>
      {!graph?.nodes ? <p className="muted">This block does not publish its inner graph.</p> : (
        <table className="data">
          <thead><tr><th>node</th><th>op</th><th>inputs</th><th>params</th></tr></thead>
          <tbody>
            {Object.keys(graph.inputs ?? {}).map((name) => (
              <tr key={`input:${name}`}><td className="mono">{name}</td><td>input</td><td /><td className="mono">{JSON.stringify(graph.inputs![name].shape ?? null)}</td></tr>
            ))}
            {graph.nodes.map((node) => (
              <tr key={node.id}>
                <td className="mono">{node.id}</td>
                <td>{node.op}</td>
                <td className="mono">{Object.entries(node.inputs ?? {}).map(([port, source]) => `${port} ← ${Array.isArray(source) ? source.join(", ") : source}`).join("; ")}</td>
                <td className="mono">{node.params ? JSON.stringify(node.params) : ""}</td>
              </tr>
            ))}
            {Object.entries(graph.outputs ?? {}).map(([name, source]) => (
              <tr key={`output:${name}`}><td className="mono">{name}</td><td>output</td><td className="mono">{source}</td><td /></tr>
            ))}
          </tbody>
        </table>
      )}
      <div className="nf-form-actions"><button onClick={onClose}>Close</button></div>
    </Modal>
  );
}
