// The live view of one run over its WebSocket (/ws/runs/<id>/, see webapp/runs/consumers.py):
// first the stored history, then points numbered by `seq` and state changes. The client keeps the
// last sequence it applied, ignores anything at or below it (a point is never applied twice),
// reconnects with backoff asking for `?after=<last seq>` (a point is never lost), and treats a
// jump in the numbering as a lost message: it reconnects to get the missing points from the record.
import type { MetricPoint, RunMessage, RunState, SeriesHistory } from "../api/types";

/** The part of the browser's WebSocket the client uses, so tests can pass a fake. */
export interface SocketLike {
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason?: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  close(code?: number, reason?: string): void;
}

export type ConnectionStatus = "connecting" | "live" | "reconnecting" | "closed";

export interface LiveRunHandlers {
  /** The complete history (first connection): replace whatever is shown. */
  history(series: Record<string, SeriesHistory>): void;
  /** New points in sequence order, none seen before. */
  points(points: MetricPoint[]): void;
  state(message: Extract<RunMessage, { type: "run.state" }> | { type: "run.state"; state: RunState }): void;
  status?(status: ConnectionStatus, detail?: string): void;
  /** A distributed run's per-worker status (`run.worker`, see workerStatus.ts). */
  worker?(message: unknown): void;
  /** Per-layer statistics sampled since the last message (`run.layer_stats`, see layerstats/). */
  layerStats?(message: unknown): void;
}

export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface LiveRunOptions {
  runId: number;
  handlers: LiveRunHandlers;
  createSocket?: (url: string) => SocketLike;
  /** ws(s)://host, default from window.location. */
  origin?: string;
  timers?: Timers;
  initialDelayMs?: number;
  maxDelayMs?: number;
  random?: () => number;
}

// Close codes of the consumer that retrying cannot fix.
const PERMANENT_CLOSES: Record<number, string> = {
  4401: "not logged in: log in again to follow this run",
  4404: "this run does not exist or is not yours",
};

export class LiveRunClient {
  lastSequence = 0;
  private hasHistory = false;
  private socket: SocketLike | null = null;
  private attempt = 0;
  private retryHandle: unknown = null;
  private stopped = true;
  /** The sequence at which a gap already triggered a reconnect; a second gap there is accepted. */
  private gapRetriedAt = -1;
  private readonly timers: Timers;
  private readonly createSocket: (url: string) => SocketLike;

  constructor(private readonly options: LiveRunOptions) {
    this.timers = options.timers ?? {
      setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
      clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof setTimeout>),
    };
    this.createSocket = options.createSocket ?? ((url) => new WebSocket(url) as unknown as SocketLike);
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.retryHandle !== null) this.timers.clearTimeout(this.retryHandle);
    this.retryHandle = null;
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      detach(socket);
      socket.close(1000, "left the page");
    }
    this.options.handlers.status?.("closed");
  }

  /** Connect again now (after a resume, or a permanent close the user wants to retry). */
  reconnectNow(): void {
    this.stopped = false;
    if (this.retryHandle !== null) this.timers.clearTimeout(this.retryHandle);
    this.retryHandle = null;
    this.attempt = 0;
    this.dropSocket();
    this.connect();
  }

  url(): string {
    const origin = this.options.origin ?? defaultOrigin();
    const after = this.hasHistory ? `?after=${this.lastSequence}` : "";
    return `${origin}/ws/runs/${this.options.runId}/${after}`;
  }

  private connect(): void {
    this.options.handlers.status?.(this.attempt === 0 ? "connecting" : "reconnecting");
    let socket: SocketLike;
    try {
      socket = this.createSocket(this.url());
    } catch (error) {
      this.scheduleReconnect(String(error));
      return;
    }
    this.socket = socket;
    socket.onmessage = (event) => {
      if (this.socket === socket) this.receive(event.data);
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      const permanent = PERMANENT_CLOSES[event.code];
      if (permanent) {
        this.stopped = true;
        this.options.handlers.status?.("closed", permanent);
        return;
      }
      this.scheduleReconnect(event.reason || `connection closed (${event.code})`);
    };
    socket.onerror = () => {
      // The close event that follows decides what happens next.
    };
  }

  private scheduleReconnect(detail: string): void {
    if (this.stopped) return;
    const initial = this.options.initialDelayMs ?? 500;
    const maximum = this.options.maxDelayMs ?? 15_000;
    const base = Math.min(maximum, initial * 2 ** this.attempt);
    // Jitter, so that many tabs reconnecting after a server restart do not arrive together.
    const delay = base * (0.8 + 0.4 * (this.options.random ?? Math.random)());
    this.attempt++;
    this.options.handlers.status?.("reconnecting", detail);
    this.retryHandle = this.timers.setTimeout(() => {
      this.retryHandle = null;
      if (!this.stopped) this.connect();
    }, delay);
  }

  private dropSocket(): void {
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      detach(socket);
      socket.close(4000, "reconnecting");
    }
  }

  private receive(data: unknown): void {
    let message: RunMessage;
    try {
      message = JSON.parse(typeof data === "string" ? data : String(data)) as RunMessage;
    } catch {
      return;
    }
    if (message.type === "run.history") this.receiveHistory(message);
    else if (message.type === "run.points") this.receivePoints(message.points);
    else if (message.type === "run.state") this.options.handlers.state(message);
    else if ((message as { type: string }).type === "run.worker") this.options.handlers.worker?.(message);
    else if ((message as { type: string }).type === "run.layer_stats") this.options.handlers.layerStats?.(message);
  }

  private receiveHistory(message: Extract<RunMessage, { type: "run.history" }>): void {
    this.attempt = 0;
    this.options.handlers.status?.("live");
    if (!this.hasHistory) {
      this.hasHistory = true;
      this.lastSequence = message.last_sequence;
      this.options.handlers.history(message.series);
    } else {
      // A reconnect: the history holds what happened after ?after=, as points to append.
      const fresh = historyPoints(message.series).filter((point) => point.seq > this.lastSequence);
      if (fresh.length) {
        this.lastSequence = fresh[fresh.length - 1].seq;
        this.options.handlers.points(fresh);
      }
      this.lastSequence = Math.max(this.lastSequence, message.last_sequence);
    }
    this.options.handlers.state({ type: "run.state", state: message.state });
  }

  private receivePoints(points: MetricPoint[]): void {
    const fresh = points.filter((point) => point.seq > this.lastSequence).sort((a, b) => a.seq - b.seq);
    if (!fresh.length) return;
    if (this.hasHistory && fresh[0].seq > this.lastSequence + 1 && this.gapRetriedAt !== this.lastSequence) {
      this.gapRetriedAt = this.lastSequence;
      this.reconnectNow();
      return;
    }
    this.lastSequence = fresh[fresh.length - 1].seq;
    this.options.handlers.points(fresh);
  }
}

/** A history's columns as points in sequence order. */
export function historyPoints(series: Record<string, SeriesHistory>): MetricPoint[] {
  const points: MetricPoint[] = [];
  for (const [name, columns] of Object.entries(series)) {
    for (let i = 0; i < columns.sequences.length; i++) {
      points.push({
        seq: columns.sequences[i],
        name,
        step: columns.steps[i],
        epoch: columns.epochs[i],
        value: columns.values[i],
        wall_time: columns.wall_times[i],
      });
    }
  }
  return points.sort((a, b) => a.seq - b.seq);
}

function detach(socket: SocketLike): void {
  socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
}

function defaultOrigin(): string {
  const { protocol, host } = window.location;
  return `${protocol === "https:" ? "wss:" : "ws:"}//${host}`;
}
