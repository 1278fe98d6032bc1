// One component draws every node: typed, named ports from the catalog, key params, inferred output
// shapes, the parameter count and the errors validation found, with a button for each fix it offers.
import { Handle, Position, type NodeProps } from "@xyflow/react";
import { memo } from "react";
import { formatShape } from "../graph/format";
import { keyParams } from "../graph/params";
import { describeRank, nodePorts } from "../graph/ports";
import type { GraphNode } from "../graph/types";
import { FixButtons } from "./FixButtons";
import { useEditorStore } from "./store";

function NetNodeView({ id, data, selected }: NodeProps<GraphNode>) {
  const op = useEditorStore((state) => state.ops.get(data.kind));
  const ops = useEditorStore((state) => state.ops);
  const report = useEditorStore((state) => state.report?.nodes[id]);
  const mark = useEditorStore((state) => state.diffMarks[id]);
  const dataset = useEditorStore((state) => state.datasets.find((candidate) => candidate.id === data.fields.dataset));
  const openBlock = useEditorStore((state) => state.openBlock);
  const ports = nodePorts(data.kind, data.fields, (name) => ops.get(name));
  const errors = report?.errors ?? [];
  const unknown = !op && !["input", "output", "loss"].includes(data.kind);
  const fields = data.fields;
  const title = (typeof fields.label === "string" && fields.label) || (data.kind === "input" || data.kind === "output" ? (fields.name as string | undefined) ?? id : data.kind);
  const classes = ["nf-node", `nf-node-${["input", "output", "loss"].includes(data.kind) ? data.kind : "op"}`];
  if (errors.length || unknown) classes.push("has-error");
  if (selected) classes.push("selected");
  if (mark) classes.push(`diff-${mark}`);

  return (
    <div className={classes.join(" ")} title={op?.doc}>
      {/* Inputs along the top edge and outputs along the bottom: graphs are laid out top to bottom. */}
      <div className="nf-node-inputs">
        {ports.inputs.map((port) => (
          <div key={port.name} className="nf-port nf-port-in" title={`${port.name}: ${port.dtype}${port.rank ? `, ${describeRank(port.rank)}` : ""}${port.variadic ? ", takes several" : ""}${port.doc ? ` — ${port.doc}` : ""}`}>
            <Handle type="target" position={Position.Top} id={port.name} className={`dtype-${port.dtype}${port.variadic ? " variadic" : ""}`} />
            <span>{port.name}{port.variadic ? "…" : ""}</span>
          </div>
        ))}
      </div>
      <div className="nf-node-header">
        <span className="nf-node-title">{title}</span>
        {title !== data.kind && <span className="nf-node-kind">{data.kind}</span>}
        {(errors.length > 0 || unknown) && (
          <span className="nf-node-error-badge" data-testid="node-error-badge" title="Select the node to see its errors">
            ⚠ {errors.length || 1}
          </span>
        )}
        {report && (
          <span className="nf-node-params" title={`${report.parameters} trainable parameters`}>
            <span data-testid="node-params">{report.parameters}</span> params
          </span>
        )}
      </div>
      <div className="nf-node-body">
        {data.kind === "input" && (
          <>
            <div className="mono">{formatShape(Array.isArray(fields.shape) ? [null, ...(fields.shape as number[])] : null) || "shape not set"} {String(fields.dtype ?? "float32")}</div>
            {dataset && <div className="nf-node-dataset">{dataset.name} · {fields.role === "labels" ? "labels" : "features"}</div>}
          </>
        )}
        {op && keyParams(op, (fields.params as Record<string, unknown> | undefined) ?? {}).map(([name, value]) => (
          <div key={name} className="nf-kv"><span>{name}</span> <span className="mono">{value}</span></div>
        ))}
        {data.kind !== "input" && report && Object.entries(report.outputs).map(([port, tensor]) => (
          <div key={port} className="nf-node-shape mono" title={`${port}: ${tensor.dtype}`}>
            {ports.outputs.length > 1 ? `${port}: ` : "→ "}{formatShape(tensor.shape)}
          </div>
        ))}
        {op?.block && (
          <button className="link nodrag" onClick={() => openBlock?.(op)} aria-label={`Open block ${op.name}`}>open ▸</button>
        )}
      </div>
      {(errors.length > 0 || unknown) && (
        // Beside the node, shown while it is selected or hovered: errors never make a node bigger
        // or cover its neighbours' ports.
        <div className="nf-node-errors nodrag nowheel" role="tooltip" data-testid="node-errors">
          {unknown && !errors.length && <div className="nf-node-error" data-testid="node-error">unknown node type '{data.kind}'</div>}
          {errors.map((error, index) => (
            <div key={index} className="nf-node-error" data-testid="node-error">
              {error.message}
              <FixButtons nodeId={id} error={error} />
            </div>
          ))}
        </div>
      )}
      <div className="nf-node-outputs">
        {ports.outputs.map((port) => (
          <div key={port.name} className="nf-port nf-port-out" title={`${port.name}: ${port.dtype}`}>
            <span>{port.name}</span>
            <Handle type="source" position={Position.Bottom} id={port.name} className={`dtype-${port.dtype}`} />
          </div>
        ))}
      </div>
    </div>
  );
}

export const NetNode = memo(NetNodeView);
