// The bar under the canvas: totals from the last validation and every error, each one a way to
// the node it is about.
import { useState } from "react";
import type { GraphErrorItem } from "../api/types";
import { formatBytes, formatCount } from "../graph/format";
import { useEditorStore } from "./store";

interface SummaryBarProps {
  validating: boolean;
  validationFailed: string | null;
  onSelectNode(nodeId: string): void;
}

export function SummaryBar({ validating, validationFailed, onSelectNode }: SummaryBarProps) {
  const report = useEditorStore((state) => state.report);
  const [open, setOpen] = useState(false);
  const errors: GraphErrorItem[] = report ? [...report.errors, ...Object.values(report.nodes).flatMap((node) => node.errors)] : [];
  return (
    <div className="nf-summary" role="status" aria-label="Graph summary">
      <span>Parameters <strong data-testid="summary-parameters" title={report ? formatCount(report.total_parameters) : undefined}>{report?.total_parameters ?? "–"}</strong></span>
      <span>FLOPs/sample <strong data-testid="summary-flops">{report ? formatCount(report.flops_per_sample) : "–"}</strong></span>
      <span title={report ? `activations and weights at batch size ${report.batch_size}` : undefined}>
        Memory <strong data-testid="summary-memory">{report ? formatBytes(report.memory_bytes) : "–"}</strong>
      </span>
      <button className={`nf-summary-errors${errors.length ? " has-error" : ""}`} aria-expanded={open} onClick={() => setOpen(!open)} disabled={!report}>
        Errors <strong data-testid="summary-errors">{report?.error_count ?? 0}</strong>
      </button>
      {validating && <span className="muted" data-testid="validating">validating…</span>}
      {validationFailed && <span className="nf-field-error">validation unavailable: {validationFailed}</span>}
      {report && report.errors.length > 0 && !open && (
        <span className="nf-summary-graph-error" title={report.errors.map((error) => error.message).join("\n")}>{report.errors[0].message}</span>
      )}
      {open && errors.length > 0 && (
        <ul className="nf-error-list" aria-label="All errors">
          {errors.map((error, index) => (
            <li key={index}>
              {error.node ? (
                <button className="link" onClick={() => onSelectNode(error.node!)}><code>{error.node}</code></button>
              ) : <span className="muted">graph</span>}{" "}
              {error.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
