// The top bar's word on the workers: a dot (ok, degraded, down) and how busy the training slots are,
// linking to the workers page; the problems, with how to start a missing worker, in the tooltip.
import { NavLink } from "react-router-dom";
import { summarize } from "./status";
import { useWorkerStatus } from "./useWorkerStatus";
import "./workers.css";

export function WorkerStatusBadge() {
  const { status, error } = useWorkerStatus(15_000);
  if (!status && !error) return null;
  const summary = status
    ? summarize(status)
    : { health: "down" as const, text: "workers unknown", problems: [`could not read the worker status: ${error}`] };
  const title = summary.problems.length
    ? summary.problems.join("\n").replaceAll("`", "")
    : "The cpu and datasets queues have a live worker.";
  return (
    <NavLink to="/workers" className={`worker-status ${summary.health}`} title={title} data-testid="worker-status">
      <span className="dot" aria-hidden="true" />
      {summary.text}
    </NavLink>
  );
}
