// One node of the read-only Layers canvas: its name, its value of the chosen statistic on a fill of
// that colour, a sparkline of the statistic over the samples, and its warnings.
import { Handle, Position, type Node, type NodeProps } from "@xyflow/react";
import { memo } from "react";
import type { LayerNodeData } from "./layout";
import type { NodeWarning } from "./stats";

export interface LayerNodeView extends LayerNodeData {
  color?: string;
  value?: string;
  spark?: string;
  warnings: NodeWarning[];
  /** Left out of the optimizer by a fine-tuning run's freeze option. */
  frozen?: boolean;
}

export const SPARK_WIDTH = 150;
export const SPARK_HEIGHT = 22;

const WARNING_ICONS: Record<NodeWarning["kind"], string> = { nan: "NaN", exploding: "↑∞", vanishing: "↓0", dead: "✝", saturated: "⊓" };

function LayerNodeComponent({ id, data, selected }: NodeProps<Node<LayerNodeView, "layer">>) {
  const classes = ["ls-node"];
  if (data.color) classes.push("has-value");
  if (data.warnings.length) classes.push("has-warning");
  if (data.warnings.some((warning) => warning.kind === "nan")) classes.push("nan-source");
  if (selected) classes.push("selected");
  return (
    <div className={classes.join(" ")} data-testid="layer-node" data-node-id={id} data-color={data.color ?? ""}
      style={data.color ? { borderLeftColor: data.color, background: `linear-gradient(90deg, ${data.color} 0 10px, var(--panel) 10px)` } : undefined}>
      {data.inputs.map((handle, index) => (
        <Handle key={handle || index} type="target" position={Position.Top} id={handle || undefined} isConnectable={false}
          style={{ left: `${((index + 1) / (data.inputs.length + 1)) * 100}%` }} />
      ))}
      <div className="ls-node-header">
        <span className="ls-node-title">{data.title}</span>
        {data.kind && data.kind !== data.title && <span className="ls-node-kind">{data.kind}</span>}
        {data.frozen && <span className="badge" data-testid="layer-node-frozen" title="Frozen: its weights are not trained in this run">frozen</span>}
        {data.value !== undefined && <span className="ls-node-value mono" data-testid="layer-node-value">{data.value}</span>}
      </div>
      {data.spark && (
        <svg className="ls-spark" width={SPARK_WIDTH} height={SPARK_HEIGHT} aria-hidden="true">
          <path d={data.spark} fill="none" stroke={data.color ?? "currentColor"} strokeWidth={1.5} />
        </svg>
      )}
      {data.warnings.length > 0 && (
        <ul className="ls-warnings">
          {data.warnings.map((warning) => (
            <li key={warning.kind} className={`ls-warning ls-warning-${warning.kind}`} data-testid="layer-warning" data-kind={warning.kind}>
              <span className="ls-warning-icon" aria-hidden="true">{WARNING_ICONS[warning.kind]}</span> {warning.message}
            </li>
          ))}
        </ul>
      )}
      {data.outputs.map((handle, index) => (
        <Handle key={handle || index} type="source" position={Position.Bottom} id={handle || undefined} isConnectable={false}
          style={{ left: `${((index + 1) / (data.outputs.length + 1)) * 100}%` }} />
      ))}
    </div>
  );
}

export const LayerNode = memo(LayerNodeComponent);
