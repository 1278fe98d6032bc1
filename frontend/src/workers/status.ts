// What the worker status (GET /api/workers) means for someone about to start a run: plain logic, apart
// from the components that show it.
import type { components } from "../api/schema";

export type WorkersStatus = components["schemas"]["Workers"];
export type QueueStatus = components["schemas"]["QueueStatus"];

export type Health = "ok" | "degraded" | "down";

export interface Summary {
  health: Health;
  /** A few words for the top bar. */
  text: string;
  /** One sentence per problem, for the tooltip and the page. */
  problems: string[];
}

/** Tasks running per pool slot, as a percentage (0 with no slots). */
export function loadPercent(queue: Pick<QueueStatus, "active" | "concurrency">): number {
  return queue.concurrency > 0 ? Math.round((100 * queue.active) / queue.concurrency) : 0;
}

/**
 * "down": the broker cannot be reached or no worker trains on the CPU (no run can start);
 * "degraded": the CPU queue is served but another known queue is not (datasets, or gpu where a run
 * asks for it: runs on it are refused); "ok" otherwise. A missing GPU worker alone is normal on a
 * machine without a GPU: it is listed, not counted as a problem.
 */
export function summarize(status: WorkersStatus): Summary {
  if (!status.broker_reachable) {
    return { health: "down", text: "broker unreachable", problems: [status.error || "the message broker is unreachable"] };
  }
  const byName = new Map(status.queues.map((queue) => [queue.name, queue]));
  const problems: string[] = [];
  for (const name of ["cpu", "datasets"]) {
    const queue = byName.get(name);
    if (queue && !queue.live) problems.push(`no worker serves the ${name} queue: start one with ${queue.start_command}`);
  }
  const cpu = byName.get("cpu");
  if (cpu && !cpu.live) return { health: "down", text: "no CPU worker", problems };
  const training = status.queues.filter((queue) => queue.live && (queue.name === "cpu" || queue.name === "gpu"));
  const active = training.reduce((sum, queue) => sum + queue.active, 0);
  const slots = training.reduce((sum, queue) => sum + queue.concurrency, 0);
  const gpu = byName.get("gpu")?.live ? " · GPU" : "";
  return {
    health: problems.length ? "degraded" : "ok",
    text: `workers ${active}/${slots} busy${gpu}`,
    problems,
  };
}

/** The server's text with `commands` in backticks, as pieces to show (code in a monospace font). */
export function textAndCode(text: string): { text: string; code: boolean }[] {
  return text
    .split("`")
    .map((piece, index) => ({ text: piece, code: index % 2 === 1 }))
    .filter((piece) => piece.text !== "");
}
