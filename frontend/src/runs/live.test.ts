import { beforeEach, describe, expect, it } from "vitest";
import type { MetricPoint, SeriesHistory } from "../api/types";
import { LiveRunClient, type SocketLike } from "./live";

class FakeSocket implements SocketLike {
  onopen: SocketLike["onopen"] = null;
  onmessage: SocketLike["onmessage"] = null;
  onclose: SocketLike["onclose"] = null;
  onerror: SocketLike["onerror"] = null;
  closed = false;
  constructor(readonly url: string) {}
  close(): void {
    this.closed = true;
  }
  send(message: unknown): void {
    this.onmessage?.({ data: JSON.stringify(message) });
  }
  drop(code = 1006): void {
    this.onclose?.({ code });
  }
}

class FakeTimers {
  pending: { callback: () => void; ms: number }[] = [];
  setTimeout = (callback: () => void, ms: number) => {
    const entry = { callback, ms };
    this.pending.push(entry);
    return entry;
  };
  clearTimeout = (handle: unknown) => {
    this.pending = this.pending.filter((entry) => entry !== handle);
  };
  runNext(): number {
    const next = this.pending.shift();
    next?.callback();
    return next?.ms ?? -1;
  }
}

function point(seq: number, name = "loss"): MetricPoint {
  return { seq, name, step: seq, epoch: seq / 10, value: 1 / seq, wall_time: 1000 + seq };
}

function history(points: MetricPoint[], lastSequence: number, state = "running") {
  const series: Record<string, SeriesHistory> = {};
  for (const p of points) {
    const columns = (series[p.name] ??= { steps: [], epochs: [], values: [], wall_times: [], sequences: [], total: 0 });
    columns.steps.push(p.step);
    columns.epochs.push(p.epoch);
    columns.values.push(p.value);
    columns.wall_times.push(p.wall_time);
    columns.sequences.push(p.seq);
    columns.total++;
  }
  return { type: "run.history", run: 7, state, last_sequence: lastSequence, catch_up_to: lastSequence, series };
}

describe("LiveRunClient", () => {
  let sockets: FakeSocket[];
  let timers: FakeTimers;
  let applied: number[];
  let histories: number;
  let states: string[];
  let client: LiveRunClient;

  beforeEach(() => {
    sockets = [];
    timers = new FakeTimers();
    applied = [];
    histories = 0;
    states = [];
    client = new LiveRunClient({
      runId: 7,
      origin: "ws://test",
      timers,
      random: () => 0.5,
      createSocket: (url) => {
        const socket = new FakeSocket(url);
        sockets.push(socket);
        return socket;
      },
      handlers: {
        history: (series) => {
          histories++;
          applied = Object.values(series).flatMap((columns) => columns.sequences).sort((a, b) => a - b);
        },
        points: (points) => applied.push(...points.map((p) => p.seq)),
        state: (message) => states.push(message.state),
      },
    });
    client.start();
  });

  it("applies the history, then live points, each sequence once", () => {
    expect(sockets[0].url).toBe("ws://test/ws/runs/7/");
    sockets[0].send(history([point(1), point(2), point(3, "val_loss")], 3));
    sockets[0].send({ type: "run.points", points: [point(3), point(4), point(5)] });
    sockets[0].send({ type: "run.points", points: [point(5), point(6)] });
    expect(histories).toBe(1);
    expect(applied).toEqual([1, 2, 3, 4, 5, 6]);
    expect(client.lastSequence).toBe(6);
  });

  it("reconnects with backoff and ?after=<last seq>, appending what it missed", () => {
    sockets[0].send(history([point(1), point(2)], 2));
    sockets[0].send({ type: "run.points", points: [point(3)] });
    sockets[0].drop();
    expect(timers.runNext()).toBe(500);
    sockets[1].drop();
    expect(timers.runNext()).toBe(1000);
    expect(sockets[2].url).toBe("ws://test/ws/runs/7/?after=3");
    sockets[2].send(history([point(4), point(5, "accuracy")], 5));
    sockets[2].send({ type: "run.points", points: [point(5), point(6)] });
    expect(histories).toBe(1);
    expect(applied).toEqual([1, 2, 3, 4, 5, 6]);
    // A history resets the backoff.
    sockets[2].drop();
    expect(timers.runNext()).toBe(500);
  });

  it("fills a gap in the numbering from the server instead of skipping it", () => {
    sockets[0].send(history([point(1)], 1));
    sockets[0].send({ type: "run.points", points: [point(4), point(5)] });
    expect(applied).toEqual([1]);
    expect(sockets[0].closed).toBe(true);
    expect(sockets[1].url).toBe("ws://test/ws/runs/7/?after=1");
    sockets[1].send(history([point(2), point(3), point(4), point(5)], 5));
    expect(applied).toEqual([1, 2, 3, 4, 5]);
  });

  it("accepts a gap the server cannot fill rather than looping", () => {
    sockets[0].send(history([point(1)], 1));
    sockets[0].send({ type: "run.points", points: [point(4)] });
    sockets[1].send(history([], 1));
    sockets[1].send({ type: "run.points", points: [point(4)] });
    expect(applied).toEqual([1, 4]);
    expect(sockets.length).toBe(2);
  });

  it("passes state changes on and stops retrying on a permanent close", () => {
    sockets[0].send(history([], 0, "queued"));
    sockets[0].send({ type: "run.state", state: "running", epochs_completed: 0 });
    expect(states).toEqual(["queued", "running"]);
    sockets[0].drop(4404);
    expect(timers.pending.length).toBe(0);
  });

  it("stops cleanly", () => {
    sockets[0].drop();
    client.stop();
    expect(timers.pending.length).toBe(0);
    expect(sockets.length).toBe(1);
  });
});
