// The per-worker view of a distributed run: the `run.worker` live messages of its processes
// (workers/distributed/execution.py, webapp/runs/live.py), one row per rank, newest message wins.
// Rank -1 is the parameter server. Live only: a page opened later fills in within half a second.

export interface WorkerStatus {
  type: "run.worker";
  run: number;
  rank: number;
  world_size: number;
  strategy: string;
  host: string;
  state: string;
  step: number;
  samples_per_second: number;
  bytes_sent: number;
  error: string;
  wall_time: number;
}

export function isWorkerStatus(message: unknown): message is WorkerStatus {
  const value = message as Partial<WorkerStatus> | null;
  return !!value && value.type === "run.worker" && typeof value.rank === "number";
}

/** The table's rows after `message`: one per rank, the server first, then ranks in order. An
 * older message of a rank (by wall time) never replaces a newer one. */
export function mergeWorkerStatus(rows: WorkerStatus[], message: WorkerStatus): WorkerStatus[] {
  const current = rows.find((row) => row.rank === message.rank);
  if (current && current.wall_time > message.wall_time) return rows;
  const merged = [...rows.filter((row) => row.rank !== message.rank), message];
  return merged.sort((a, b) => a.rank - b.rank);
}

export function workerLabel(rank: number): string {
  return rank < 0 ? "parameter server" : `rank ${rank}`;
}

export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return "—";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 ? value.toFixed(0) : value.toPrecision(3)} ${units[unit]}`;
}
