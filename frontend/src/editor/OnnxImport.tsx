// "Import ONNX": uploads an .onnx file to POST /api/projects/<id>/import, which saves it as the
// project's next graph version (its weights kept for a run to start from), and opens that version
// on the canvas. A refused file is explained in a dialog: each node the catalog cannot compute,
// with its op type, or why the file could not be read.
import { useRef, useState } from "react";
import { ApiError, apiUpload, errorMessage } from "../api/client";
import type { GraphVersion } from "../api/types";
import { Modal } from "./dialogs";
import { selectDirty, useEditorStore } from "./store";

interface UnsupportedNode {
  node: string;
  op_type: string;
  reason: string;
}

export interface ImportProblem {
  message: string;
  nodes: UnsupportedNode[];
}

/** What a refused import says: the message, and the unsupported nodes when there are some. */
export function importProblem(error: unknown): ImportProblem {
  const details = error instanceof ApiError ? (error.details as { unsupported?: UnsupportedNode[] } | undefined) : undefined;
  const nodes = Array.isArray(details?.unsupported) ? details.unsupported : [];
  return { message: nodes.length ? `${nodes.length} node(s) have no op in the catalog:` : errorMessage(error), nodes };
}

export function OnnxImportButton({ projectId }: { projectId: number }) {
  const input = useRef<HTMLInputElement>(null);
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<{ file: string } & ImportProblem | null>(null);

  const importFile = async (file: File) => {
    const state = useEditorStore.getState();
    if (selectDirty(state) && !window.confirm("The canvas has unsaved changes. Replace it with the imported model?")) return;
    const form = new FormData();
    form.append("file", file);
    setBusy(true);
    try {
      const version = await apiUpload<GraphVersion>(`/api/projects/${projectId}/import`, form);
      useEditorStore.getState().loadVersion(version);
    } catch (error) {
      setProblem({ file: file.name, ...importProblem(error) });
    } finally {
      setBusy(false);
    }
  };

  return (
    <>
      <button onClick={() => input.current?.click()} disabled={busy} data-testid="import-onnx"
        title="An ONNX model as the next version of this graph, its weights kept to train from">
        {busy ? "Importing…" : "Import ONNX"}
      </button>
      <input ref={input} type="file" accept=".onnx,application/octet-stream" hidden aria-hidden data-testid="import-onnx-file"
        onChange={(event) => {
          const file = event.target.files?.[0];
          event.target.value = "";
          if (file) void importFile(file);
        }} />
      {problem && (
        <Modal title={`Cannot import ${problem.file}`} onClose={() => setProblem(null)} wide>
          <div data-testid="import-onnx-problem">
            <p role="alert">{problem.message}</p>
            {problem.nodes.length > 0 && (
              <table className="data">
                <thead><tr><th>Node</th><th>Op type</th><th>Why</th></tr></thead>
                <tbody>
                  {problem.nodes.map((node) => (
                    <tr key={node.node}><td className="mono">{node.node}</td><td className="mono">{node.op_type}</td><td>{node.reason}</td></tr>
                  ))}
                </tbody>
              </table>
            )}
          </div>
          <div className="nf-form-actions"><button onClick={() => setProblem(null)}>Close</button></div>
        </Modal>
      )}
    </>
  );
}
