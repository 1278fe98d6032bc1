// An edge labelled with the tensor shape it carries (from validation), red when it is at fault.
import { BaseEdge, EdgeLabelRenderer, getBezierPath, type EdgeProps } from "@xyflow/react";
import { memo } from "react";
import { formatShape } from "../graph/format";
import type { GraphEdge } from "../graph/types";
import { useEditorStore } from "./store";

function ShapeEdgeView(props: EdgeProps<GraphEdge>) {
  const { id, sourceX, sourceY, targetX, targetY, sourcePosition, targetPosition, markerEnd, selected } = props;
  const info = useEditorStore((state) => state.report?.edges[id]);
  const [path, labelX, labelY] = getBezierPath({ sourceX, sourceY, targetX, targetY, sourcePosition, targetPosition });
  const failed = !!info?.errors.length;
  const shape = info?.shape ? formatShape(info.shape) : "";
  return (
    <>
      <BaseEdge id={id} path={path} markerEnd={markerEnd}
        style={{ stroke: failed ? "var(--danger)" : selected ? "var(--accent)" : "#94a3b8", strokeWidth: selected ? 2.5 : 1.6 }} />
      {(shape || failed) && (
        <EdgeLabelRenderer>
          <div
            className={`nf-edge-label${failed ? " has-error" : ""}`}
            style={{ transform: `translate(-50%, -50%) translate(${labelX}px, ${labelY}px)` }}
            title={failed ? info!.errors.map((error) => error.message).join("\n") : info?.dtype ?? undefined}
          >
            <span data-testid="edge-shape" data-edge-id={id}>{shape || "!"}</span>
          </div>
        </EdgeLabelRenderer>
      )}
    </>
  );
}

export const ShapeEdge = memo(ShapeEdgeView);
