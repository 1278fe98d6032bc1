// The inspector: a form for the selected node generated from its op's parameter schema, the input
// node's dataset binding, and what validation says about the node.
import { useState } from "react";
import type { EditorNode, GraphErrorItem, NodeReport, OpSchema } from "../api/types";
import { formatCount, formatShape } from "../graph/format";
import type { GraphEdge, GraphNode, InputRole } from "../graph/types";
import { isWatched } from "../layerstats/watch";
import type { BuiltinDataset } from "./api";
import { FixButtons } from "./FixButtons";
import { ParamField, ParsedField, parseShape } from "./InspectorFields";
import { useEditorStore } from "./store";

type Fields = EditorNode["data"];

interface InspectorProps {
  node: GraphNode | null;
  selectionCount: number;
  edges: GraphEdge[];
  builtins: BuiltinDataset[];
  /** Replace the node's fields; `key` groups keystrokes into one undo step. */
  onChange(nodeId: string, fields: Fields, key: string): void;
  /** Bind an input node to a dataset ("<id>" or "builtin:<name>") as features or labels; "" unbinds. */
  onBind(nodeId: string, dataset: string, role: InputRole): Promise<void>;
}

const DTYPES = ["float32", "float64", "int32", "int64"];

function Errors({ nodeId, errors }: { nodeId: string; errors: GraphErrorItem[] }) {
  if (!errors.length) return null;
  return (
    <ul className="nf-inspector-errors" aria-label="Errors">
      {errors.map((error, index) => (
        <li key={index}>{error.field && <code>{error.field}</code>} {error.message} <FixButtons nodeId={nodeId} error={error} /></li>
      ))}
    </ul>
  );
}

function Analysis({ node, report, edges }: { node: GraphNode; report: NodeReport | undefined; edges: GraphEdge[] }) {
  const allReport = useEditorStore((state) => state.report);
  if (!report) return null;
  const incoming = edges.filter((edge) => edge.target === node.id);
  return (
    <section className="nf-inspector-analysis" aria-label="Shapes">
      <h3>Shapes</h3>
      <dl>
        {incoming.map((edge) => (
          <div key={edge.id}><dt>in {edge.targetHandle}</dt><dd className="mono">{formatShape(allReport?.edges[edge.id]?.shape) || "?"}</dd></div>
        ))}
        {Object.entries(report.outputs).map(([port, tensor]) => (
          <div key={port}><dt>out {port}</dt><dd className="mono">{formatShape(tensor.shape)} {tensor.dtype}</dd></div>
        ))}
        <div><dt>parameters</dt><dd>{report.parameters.toLocaleString("en-US")}</dd></div>
        <div><dt>FLOPs / sample</dt><dd>{formatCount(report.flops_per_sample)}</dd></div>
      </dl>
    </section>
  );
}

export function Inspector({ node, selectionCount, edges, builtins, onChange, onBind }: InspectorProps) {
  const ops = useEditorStore((state) => state.ops);
  const datasets = useEditorStore((state) => state.datasets);
  const report = useEditorStore((state) => (node ? state.report?.nodes[node.id] : undefined));
  const watched = useEditorStore((state) => (node ? isWatched(state.metadata, node.id) : false));
  const setWatched = useEditorStore((state) => state.setWatched);
  const [binding, setBinding] = useState(false);
  const [bindError, setBindError] = useState<string | null>(null);

  if (!node) {
    return (
      <aside className="nf-inspector" aria-label="Inspector">
        <p className="muted">{selectionCount > 1 ? `${selectionCount} nodes selected.` : "Select a node to edit it."}</p>
        <p className="muted nf-help">Drag ops from the palette; connect an output (below a node) to an input (above one). Shift-drag selects a box; press <kbd>?</kbd> for the keyboard shortcuts.</p>
      </aside>
    );
  }
  const fields = node.data.fields;
  const kind = node.data.kind;
  const op: OpSchema | undefined = ops.get(kind);
  const params = (fields.params as Record<string, unknown> | undefined) ?? {};
  const set = (patch: Partial<Fields>, key: string) => {
    const next: Fields = { ...fields, ...patch };
    for (const [name, value] of Object.entries(patch)) if (value === undefined) delete next[name];
    onChange(node.id, next, `${node.id}:${key}`);
  };
  const setParam = (name: string, value: unknown) => {
    const next = { ...params };
    if (value === undefined) delete next[name];
    else next[name] = value;
    set({ params: next }, `param:${name}`);
  };
  const role: InputRole = fields.role === "labels" ? "labels" : "features";
  const boundTo = typeof fields.dataset === "number" ? String(fields.dataset) : "";
  const offeredBuiltins = builtins.filter((builtin) => !datasets.some((dataset) => dataset.kind === "builtin" && dataset.builtin_name === builtin.name));

  async function bind(dataset: string, nextRole: InputRole) {
    setBinding(true);
    setBindError(null);
    try {
      await onBind(node!.id, dataset, nextRole);
    } catch (error) {
      setBindError(error instanceof Error ? error.message : String(error));
    } finally {
      setBinding(false);
    }
  }

  return (
    <aside className="nf-inspector" aria-label="Inspector">
      <header>
        <h2>{kind}</h2>
        <div className="muted mono">{node.id}</div>
        {op && <p className="nf-help">{op.doc}</p>}
        {!op && kind === "input" && <p className="nf-help">A graph input: one tensor per sample, fed from the bound dataset.</p>}
      </header>
      <Errors nodeId={node.id} errors={report?.errors ?? []} />
      {kind === "input" && (
        <>
          <div className="nf-field">
            <label htmlFor="input-dataset">dataset</label>
            <select id="input-dataset" data-testid="input-dataset" value={boundTo} disabled={binding}
              onChange={(event) => void bind(event.target.value, role)}>
              <option value="">not bound</option>
              {datasets.map((dataset) => <option key={dataset.id} value={String(dataset.id)}>{dataset.name}</option>)}
              {offeredBuiltins.length > 0 && (
                <optgroup label="Built-in (adds it to your datasets)">
                  {offeredBuiltins.map((builtin) => <option key={builtin.name} value={`builtin:${builtin.name}`}>{builtin.name}</option>)}
                </optgroup>
              )}
            </select>
            {bindError && <span className="nf-field-error">{bindError}</span>}
          </div>
          <div className="nf-field">
            <label htmlFor="input-role">this input is the dataset's</label>
            <select id="input-role" data-testid="input-role" value={role} disabled={binding}
              onChange={(event) => (boundTo ? void bind(boundTo, event.target.value as InputRole) : set({ role: event.target.value }, "role"))}>
              <option value="features">features (x)</option>
              <option value="labels">labels (y)</option>
            </select>
          </div>
          <div className="nf-field">
            <label htmlFor="input-name">name</label>
            <input id="input-name" data-testid="input-name" value={typeof fields.name === "string" ? fields.name : ""} placeholder={node.id}
              onChange={(event) => set({ name: event.target.value || undefined }, "name")} />
            <span className="nf-help">the dataset array that feeds it: x for features, y for labels</span>
          </div>
          <div className="nf-field">
            <label htmlFor="input-shape">shape per sample</label>
            <ParsedField key={node.id} id="input-shape" testId="input-shape" label="shape" value={fields.shape} parse={parseShape}
              format={(value) => (value === undefined ? "" : JSON.stringify(value))} placeholder="[64]"
              onValue={(value) => set({ shape: value as number[] }, "shape")} />
            <span className="nf-help">without the batch axis</span>
          </div>
          <div className="nf-field">
            <label htmlFor="input-dtype">dtype</label>
            <select id="input-dtype" data-testid="input-dtype" value={typeof fields.dtype === "string" ? fields.dtype : "float32"}
              onChange={(event) => set({ dtype: event.target.value }, "dtype")}>
              {DTYPES.map((dtype) => <option key={dtype} value={dtype}>{dtype}</option>)}
            </select>
          </div>
          <div className="nf-field nf-field-check">
            <label htmlFor="input-batch">batch axis</label>
            <input id="input-batch" type="checkbox" checked={fields.batch !== false} onChange={(event) => set({ batch: event.target.checked ? undefined : false }, "batch")} />
          </div>
        </>
      )}
      {kind === "output" && (
        <div className="nf-field">
          <label htmlFor="output-name">name</label>
          <input id="output-name" data-testid="output-name" value={typeof fields.name === "string" ? fields.name : ""} placeholder={node.id}
            onChange={(event) => set({ name: event.target.value || undefined }, "name")} />
          <span className="nf-help">what predictions return it as</span>
        </div>
      )}
      {op && (
        <>
          <div className="nf-field">
            <label htmlFor="node-label">label</label>
            <input id="node-label" data-testid="node-label" value={typeof fields.label === "string" ? fields.label : ""} placeholder={kind}
              onChange={(event) => set({ label: event.target.value || undefined }, "label")} />
          </div>
          {op.params.length > 0 && <h3>Parameters</h3>}
          {op.params.map((schema) => (
            <ParamField key={`${node.id}:${schema.name}`} nodeId={node.id} schema={schema} value={params[schema.name]} onValue={(value) => setParam(schema.name, value)} />
          ))}
          <div className="nf-field nf-field-check">
            <label htmlFor="node-watch">watch its output</label>
            <input id="node-watch" data-testid="node-watch" type="checkbox" checked={watched}
              onChange={(event) => setWatched(node.id, event.target.checked)} />
            <span className="nf-help">a run's Layers view shows this output's mean, spread, histogram, dead or saturated units (weights and gradients are always shown)</span>
          </div>
        </>
      )}
      <Analysis node={node} report={report} edges={edges} />
    </aside>
  );
}
