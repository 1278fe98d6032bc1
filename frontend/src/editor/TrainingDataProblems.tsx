// Shown in the Train dialog: where the graph does not fit the dataset chosen there (validation
// against it, live), each problem a way to its node, whose fix buttons mend it. Start would be
// refused for the same reasons.
import type { GraphErrorItem } from "../api/types";
import { useEditorStore } from "./store";

/** The codes of validation's checks against a dataset (webapp/projects/training_data.py and the class count). */
const DATASET_CODES = new Set([
  "dataset_shape_mismatch", "dataset_no_array", "dataset_dtype_mismatch", "dataset_not_ready",
  "regression_labels", "classification_labels", "class_count_mismatch",
]);

export function TrainingDataProblems({ onSelectNode }: { onSelectNode(nodeId: string): void }) {
  const report = useEditorStore((state) => state.report);
  const problems: GraphErrorItem[] = report
    ? [...report.errors, ...Object.values(report.nodes).flatMap((node) => node.errors)].filter((error) => DATASET_CODES.has(error.code))
    : [];
  if (!problems.length) return null;
  return (
    <div className="error-box" role="alert" data-testid="train-dataset-problems">
      <p>The graph does not fit this dataset yet:</p>
      <ul>
        {problems.map((error, index) => (
          <li key={index}>
            {error.node ? <button type="button" className="link" onClick={() => onSelectNode(error.node!)}><code>{error.node}</code></button> : null}{" "}
            {error.message}{error.fix ? " (the node offers a fix)" : ""}
          </li>
        ))}
      </ul>
    </div>
  );
}
