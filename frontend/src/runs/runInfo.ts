// Small facts about runs shared by the run page, the runs table and the comparison.
import type { Run, RunState } from "../api/types";

export const FINISHED_STATES: readonly RunState[] = ["succeeded", "failed", "cancelled", "timed_out"];
export const RUN_STATES: readonly RunState[] = ["queued", "running", "succeeded", "failed", "cancelled", "timed_out"];
/** States a stopped run may be resumed from (it continues from its newest checkpoint). */
export const RESUMABLE_STATES: readonly RunState[] = ["failed", "cancelled", "timed_out"];

const STATE_LABELS: Partial<Record<string, string>> = { timed_out: "timed out" };

/** A state as the page shows it; a state this build does not know yet shows by its name. */
export function stateLabel(state: string): string {
  return STATE_LABELS[state] ?? state.replace(/_/g, " ");
}

/** Finished unless queued or running: a state added to the server later is not mistaken for a live run. */
export function isFinished(state: RunState): boolean {
  return state !== "queued" && state !== "running";
}

/** A run's hyperparameters as flat `optimizer.lr`-style keys, in a stable order. */
export function flattenHyperparameters(value: unknown, prefix = "", out: Record<string, unknown> = {}): Record<string, unknown> {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    for (const [key, inner] of Object.entries(value as Record<string, unknown>)) {
      flattenHyperparameters(inner, prefix ? `${prefix}.${key}` : key, out);
    }
  } else if (prefix) {
    out[prefix] = value;
  }
  return out;
}

export function optimizerOf(run: Run): { name: string; lr: number | null } {
  const optimizer = run.hyperparameters.optimizer;
  if (typeof optimizer === "string") return { name: optimizer, lr: null };
  if (optimizer && typeof optimizer === "object") {
    const config = optimizer as Record<string, unknown>;
    return { name: String(config.name ?? ""), lr: typeof config.lr === "number" ? config.lr : null };
  }
  return { name: "", lr: null };
}

export function durationSeconds(run: Run): number | null {
  if (!run.started_at) return null;
  const reported = run.duration_seconds;
  // The server's figure is frozen at the time of the read; a live run's duration keeps growing.
  if (typeof reported === "number" && run.finished_at) return reported;
  const end = run.finished_at ? Date.parse(run.finished_at) : Date.now();
  return Math.max(0, (end - Date.parse(run.started_at)) / 1000);
}

export function runTitle(run: Run): string {
  return run.name || `run ${run.id}`;
}

export function formatDateTime(iso: string | null | undefined): string {
  if (!iso) return "";
  const date = new Date(iso);
  return date.toLocaleString(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

/** The final metrics that are numbers (the worker also stores `status`, a word). */
export function numericFinalMetrics(run: Run): [string, number][] {
  return Object.entries(run.final_metrics ?? {}).filter((entry): entry is [string, number] => typeof entry[1] === "number");
}
