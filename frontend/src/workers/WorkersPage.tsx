// The workers: per queue whether a live worker serves it (a run for a queue without one is refused,
// with how to start one), and each worker's queues, device and load. Read again every five seconds.
import type { ReactNode } from "react";
import { loadPercent, summarize, textAndCode } from "./status";
import { useWorkerStatus } from "./useWorkerStatus";
import "./workers.css";

function WithCode({ text }: { text: string }): ReactNode {
  return textAndCode(text).map((piece, index) => (piece.code ? <code key={index}>{piece.text}</code> : piece.text));
}

export function WorkersPage() {
  const { status, error } = useWorkerStatus(5_000);
  const summary = status ? summarize(status) : null;
  return (
    <div className="workers-page">
      <h1>Workers</h1>
      <p className="muted">
        Runs go to the queue of their device (cpu or gpu); uploaded datasets are converted on the datasets queue.
        A run for a queue that no live worker serves is refused, with the reason.
      </p>
      {error && <p className="error">Could not read the worker status: {error}</p>}
      {!status && !error && <p>Loading…</p>}
      {summary && summary.problems.length > 0 && (
        <ul className="worker-problems">
          {summary.problems.map((problem) => <li key={problem}><WithCode text={problem} /></li>)}
        </ul>
      )}
      {status && status.broker_reachable && (
        <>
          <h2>Queues</h2>
          <table className="data" data-testid="queues">
            <thead>
              <tr><th>Queue</th><th>For</th><th>Workers</th><th className="num">Busy</th><th>Load</th></tr>
            </thead>
            <tbody>
              {status.queues.map((queue) => (
                <tr key={queue.name} className={queue.live ? "live" : "no-worker"}>
                  <td>{queue.name}</td>
                  <td>{queue.purpose}</td>
                  <td className="queue-workers">
                    {queue.live ? queue.workers.join(", ") : <span className="badge failed">no worker</span>}
                    {!queue.live && <div className="muted">start one with <WithCode text={queue.start_command} /></div>}
                  </td>
                  <td className="num">{queue.live ? `${queue.active} of ${queue.concurrency}` : "–"}</td>
                  <td>{queue.live && <meter min={0} max={100} value={loadPercent(queue)} title={`${loadPercent(queue)} %`} />}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <h2>Live workers</h2>
          {status.workers.length === 0 ? (
            <p>No worker answered.</p>
          ) : (
            <table className="data" data-testid="workers">
              <thead>
                <tr><th>Worker</th><th>Queues</th><th>Device</th><th className="num">Busy</th><th className="num">pid</th></tr>
              </thead>
              <tbody>
                {status.workers.map((worker) => (
                  <tr key={worker.hostname}>
                    <td>{worker.hostname}</td>
                    <td>{worker.queues.join(", ")}</td>
                    <td>{worker.device ? worker.device.toUpperCase() : "–"}</td>
                    <td className="num">{worker.active ?? "?"} of {worker.concurrency ?? "?"}</td>
                    <td className="num">{worker.pid ?? ""}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <p className="muted">Asked at {new Date(status.checked_at * 1000).toLocaleTimeString()}.</p>
        </>
      )}
    </div>
  );
}
