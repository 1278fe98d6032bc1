// The runs table without its drawing: which columns it has, what each sorts by, what the search box
// matches, and the order the rows come in.
import type { Run } from "../api/types";
import { durationSeconds, numericFinalMetrics, optimizerOf, RUN_STATES, runTitle } from "./runInfo";

export type SortValue = string | number | null;

export interface SortOrder {
  key: string;
  descending: boolean;
}

export interface RunColumn {
  key: string;
  label: string;
  /** Right-aligned, and sorted high to low on the first click. */
  numeric?: boolean;
  /** What the column sorts by; null (or empty text) sorts last. */
  value(run: Run): SortValue;
}

/** Counters, not results: the run page shows them. */
const HIDDEN_FINAL_METRICS = new Set(["steps", "epochs", "best_epoch"]);

export const METRIC_COLUMN_PREFIX = "metric:";

function numberOrNull(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

/** The columns, one per final metric that some run reports between the settings and the duration. */
export function runColumns(metricNames: readonly string[]): RunColumn[] {
  return [
    { key: "name", label: "Name", value: (run) => runTitle(run).toLowerCase() },
    { key: "state", label: "State", value: (run) => RUN_STATES.indexOf(run.state) },
    { key: "version", label: "Graph", numeric: true, value: (run) => run.graph_version_number },
    { key: "dataset", label: "Dataset", value: (run) => run.dataset_name },
    { key: "optimizer", label: "Optimizer", value: (run) => optimizerOf(run).name },
    { key: "lr", label: "lr", numeric: true, value: (run) => optimizerOf(run).lr },
    { key: "batch", label: "Batch", numeric: true, value: (run) => numberOrNull(run.hyperparameters.batch_size) },
    { key: "epochs", label: "Epochs", numeric: true, value: (run) => numberOrNull(run.hyperparameters.epochs) },
    ...metricNames.map((name): RunColumn => ({
      key: `${METRIC_COLUMN_PREFIX}${name}`, label: name, numeric: true, value: (run) => numberOrNull(run.final_metrics?.[name]),
    })),
    { key: "duration", label: "Duration", numeric: true, value: durationSeconds },
    { key: "tags", label: "Tags", value: (run) => run.tags.join(",") },
    { key: "notes", label: "Notes", value: (run) => run.notes },
    { key: "created", label: "Created", value: (run) => run.created_at },
  ];
}

/** The final metrics any of the runs reports, loss first, each metric before its validation twin. */
export function metricNamesOf(runs: readonly Run[]): string[] {
  const names = new Set<string>();
  for (const run of runs) for (const [name] of numericFinalMetrics(run)) if (!HIDDEN_FINAL_METRICS.has(name)) names.add(name);
  return [...names].sort(metricOrder);
}

/** loss first, then each metric before its validation twin. */
export function metricOrder(a: string, b: string): number {
  const base = (name: string) => name.replace(/^val_/, "").replace(/^epoch_/, "");
  const rank = (name: string) => (base(name) === "loss" ? 0 : 1);
  return rank(a) - rank(b) || base(a).localeCompare(base(b)) || Number(a.startsWith("val_")) - Number(b.startsWith("val_"));
}

/** Nulls and empty text last in either direction, numbers by value, text by locale. */
export function compareValues(a: SortValue, b: SortValue, descending: boolean): number {
  if (a === null || a === "") return b === null || b === "" ? 0 : 1;
  if (b === null || b === "") return -1;
  const order = typeof a === "number" && typeof b === "number" ? a - b : String(a).localeCompare(String(b));
  return descending ? -order : order;
}

/** Whether the search box's text is in the run's name, id, notes, dataset, graph, optimizer or a
 *  tag, ignoring case; blank text matches every run. */
export function matchesSearch(run: Run, text: string): boolean {
  const needle = text.trim().toLowerCase();
  if (!needle) return true;
  return [runTitle(run), String(run.id), run.notes, run.dataset_name, run.graph_name, optimizerOf(run).name, ...run.tags]
    .some((field) => field.toLowerCase().includes(needle));
}

/** The rows the table shows: the runs that match the search, sorted by the column (a new list;
 *  ties keep the server's order). An unknown column key sorts by the first column. */
export function visibleRuns(runs: readonly Run[], text: string, columns: readonly RunColumn[], sort: SortOrder): Run[] {
  const column = columns.find((candidate) => candidate.key === sort.key) ?? columns[0];
  const shown = runs.filter((run) => matchesSearch(run, text));
  return column ? shown.sort((a, b) => compareValues(column.value(a), column.value(b), sort.descending)) : shown;
}

/** A click on a column's header: the same column flips its direction, another starts high to low
 *  for numbers and A to Z for text. */
export function nextSort(current: SortOrder, column: Pick<RunColumn, "key" | "numeric">): SortOrder {
  if (current.key === column.key) return { key: column.key, descending: !current.descending };
  return { key: column.key, descending: column.numeric === true };
}
