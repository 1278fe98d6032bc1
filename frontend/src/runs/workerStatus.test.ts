import { describe, expect, it } from "vitest";
import { LiveRunClient, type SocketLike } from "./live";
import { formatBytes, isWorkerStatus, mergeWorkerStatus, workerLabel, type WorkerStatus } from "./workerStatus";

function status(rank: number, step: number, wall_time: number, state = "running"): WorkerStatus {
  return { type: "run.worker", run: 1, rank, world_size: 2, strategy: "ps", host: "h:1", state, step,
           samples_per_second: 10, bytes_sent: 0, error: "", wall_time };
}

describe("worker status", () => {
  it("keeps one row per rank, the parameter server first, the newest message of each", () => {
    let rows: WorkerStatus[] = [];
    rows = mergeWorkerStatus(rows, status(1, 5, 10));
    rows = mergeWorkerStatus(rows, status(-1, 5, 10));
    rows = mergeWorkerStatus(rows, status(0, 6, 11));
    rows = mergeWorkerStatus(rows, status(1, 7, 12, "succeeded"));
    expect(rows.map((row) => [row.rank, row.step, row.state])).toEqual([[-1, 5, "running"], [0, 6, "running"], [1, 7, "succeeded"]]);
  });

  it("does not let a late older message replace a newer one", () => {
    const rows = mergeWorkerStatus([status(0, 9, 20, "cancelled")], status(0, 8, 19));
    expect(rows[0].state).toBe("cancelled");
  });

  it("recognizes worker messages and names ranks", () => {
    expect(isWorkerStatus(status(0, 1, 1))).toBe(true);
    expect(isWorkerStatus({ type: "run.state", state: "running" })).toBe(false);
    expect(workerLabel(-1)).toBe("parameter server");
    expect(workerLabel(2)).toBe("rank 2");
  });

  it("formats byte counts", () => {
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(1_234_567)).toBe("1.23 MB");
    expect(formatBytes(-1)).toBe("—");
  });
});

describe("the live client", () => {
  it("hands run.worker messages to the worker handler", () => {
    let socket: (SocketLike & { onmessage: SocketLike["onmessage"] }) | null = null;
    const received: unknown[] = [];
    const client = new LiveRunClient({
      runId: 1, origin: "ws://test",
      createSocket: () => {
        socket = { onopen: null, onmessage: null, onclose: null, onerror: null, close: () => undefined };
        return socket;
      },
      handlers: { history: () => undefined, points: () => undefined, state: () => undefined, worker: (message) => received.push(message) },
    });
    client.start();
    socket!.onmessage?.({ data: JSON.stringify(status(1, 3, 5)) });
    expect(received).toEqual([status(1, 3, 5)]);
    client.stop();
  });
});
