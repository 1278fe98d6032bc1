import { describe, expect, it } from "vitest";
import { loadPercent, summarize, textAndCode, type QueueStatus, type WorkersStatus } from "./status";

function queue(name: string, live: boolean, active = 0, concurrency = live ? 4 : 0): QueueStatus {
  return {
    name, purpose: "", live, workers: live ? [`${name}@host`] : [], active, concurrency,
    start_command: `\`celery -A workers.celery_app worker -Q ${name}\``,
  };
}

function status(queues: QueueStatus[], broker_reachable = true): WorkersStatus {
  return { checked_at: 0, broker_reachable, error: broker_reachable ? "" : "the message broker is unreachable (refused)",
    workers: [], queues };
}

describe("summarize", () => {
  it("is ok with CPU and datasets workers, and counts the busy training slots", () => {
    const summary = summarize(status([queue("cpu", true, 3, 4), queue("gpu", false), queue("datasets", true, 1, 1)]));
    expect(summary).toEqual({ health: "ok", text: "workers 3/4 busy", problems: [] });
  });

  it("adds the GPU's slots and says so when a GPU worker is live", () => {
    const summary = summarize(status([queue("cpu", true, 1, 4), queue("gpu", true, 1, 1), queue("datasets", true)]));
    expect(summary.text).toBe("workers 2/5 busy · GPU");
  });

  it("is down without a CPU worker, naming how to start one", () => {
    const summary = summarize(status([queue("cpu", false), queue("gpu", false), queue("datasets", true)]));
    expect(summary.health).toBe("down");
    expect(summary.problems).toEqual(["no worker serves the cpu queue: start one with `celery -A workers.celery_app worker -Q cpu`"]);
  });

  it("is degraded without a datasets worker", () => {
    const summary = summarize(status([queue("cpu", true), queue("gpu", false), queue("datasets", false)]));
    expect(summary.health).toBe("degraded");
    expect(summary.problems[0]).toContain("datasets queue");
  });

  it("is down when the broker cannot be reached", () => {
    expect(summarize(status([], false))).toEqual({
      health: "down", text: "broker unreachable", problems: ["the message broker is unreachable (refused)"],
    });
  });
});

it("loadPercent is tasks per slot, 0 without slots", () => {
  expect(loadPercent({ active: 3, concurrency: 4 })).toBe(75);
  expect(loadPercent({ active: 0, concurrency: 0 })).toBe(0);
});

it("textAndCode marks the backticked commands", () => {
  expect(textAndCode("start one with `celery -A workers.celery_app worker -Q gpu` (make run starts one)")).toEqual([
    { text: "start one with ", code: false },
    { text: "celery -A workers.celery_app worker -Q gpu", code: true },
    { text: " (make run starts one)", code: false },
  ]);
});
