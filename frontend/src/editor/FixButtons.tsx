// The buttons that apply a validation error's fixes (on the node and in the inspector), and what
// went wrong when one could not be applied (a dataset's view refused by the server, say).
import { useState } from "react";
import { errorMessage } from "../api/client";
import type { GraphErrorItem } from "../api/types";
import { fixLabel } from "../graph/fixes";
import { useEditorStore } from "./store";

export function FixButtons({ nodeId, error }: { nodeId: string; error: GraphErrorItem }) {
  const applyFix = useEditorStore((state) => state.applyFix);
  const [failed, setFailed] = useState<string | null>(null);
  const fixes = error.fixes ?? (error.fix ? [error.fix] : []);
  if (!fixes.length) return null;
  return (
    <>
      {fixes.map((fix) => (
        <button key={fixLabel(fix)} type="button" className="nf-node-fix nodrag" data-testid="node-fix"
          onClick={() => {
            setFailed(null);
            applyFix(nodeId, fix).catch((caught) => setFailed(`${fixLabel(fix)}: ${errorMessage(caught)}`));
          }}>
          {fixLabel(fix)}
        </button>
      ))}
      {failed && <span className="nf-field-error" role="alert">{failed}</span>}
    </>
  );
}
