import { describe, expect, it } from "vitest";
import { LiveRunClient, type SocketLike } from "../runs/live";
import { LayerStatsFeed } from "./feed";
import type { LayerSample } from "./stats";

class FakeSocket implements SocketLike {
  onopen: SocketLike["onopen"] = null;
  onmessage: SocketLike["onmessage"] = null;
  onclose: SocketLike["onclose"] = null;
  onerror: SocketLike["onerror"] = null;
  close(): void {}
  send(message: unknown): void {
    this.onmessage?.({ data: JSON.stringify(message) });
  }
}

describe("live layer statistics", () => {
  it("go from the run's WebSocket to the feed's subscribers, and stop once unsubscribed", () => {
    const feed = new LayerStatsFeed();
    const socket = new FakeSocket();
    const client = new LiveRunClient({
      runId: 7,
      origin: "ws://test",
      createSocket: () => socket,
      handlers: {
        history: () => {}, points: () => {}, state: () => {},
        layerStats: (message) => feed.push((message as { samples: LayerSample[] }).samples),
      },
    });
    const received: number[][] = [];
    const unsubscribe = feed.subscribe((samples) => received.push(samples.map((sample) => sample.step)));
    client.start();
    const sample = (step: number): LayerSample => ({ step, epoch: 1, wall_time: 1, nodes: {}, nan: null });
    socket.send({ type: "run.layer_stats", run: 7, samples: [sample(101), sample(121)] });
    unsubscribe();
    socket.send({ type: "run.layer_stats", run: 7, samples: [sample(141)] });
    client.stop();
    expect(received).toEqual([[101, 121]]);
  });
});
