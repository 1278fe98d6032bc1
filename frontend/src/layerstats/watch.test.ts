import { describe, expect, it } from "vitest";

import { isWatched, watchedOutputs, withWatched } from "./watch";

const ALL = ["x", "fc1", "relu1", "fc2"];

describe("watched outputs", () => {
  it("watches every node's output by default", () => {
    expect(watchedOutputs(undefined)).toBeNull();
    expect(isWatched(undefined, "fc1")).toBe(true);
    expect(isWatched({ other: 1 }, "relu1")).toBe(true);
  });

  it("unwatching one node of the default lists every other node", () => {
    const metadata = withWatched({ imported: { format: "onnx" } }, ALL, "relu1", false);
    expect(metadata).toEqual({ imported: { format: "onnx" }, layer_stats: { nodes: ["x", "fc1", "fc2"] } });
    expect(isWatched(metadata, "relu1")).toBe(false);
    expect(isWatched(metadata, "fc2")).toBe(true);
  });

  it("watching every node again goes back to the default and keeps the other metadata", () => {
    const unwatched = withWatched(undefined, ALL, "fc2", false);
    expect(withWatched(unwatched, ALL, "fc2", true)).toBeUndefined();
    const kept = withWatched({ imported: 1 }, ALL, "fc2", false);
    expect(withWatched(kept, ALL, "fc2", true)).toEqual({ imported: 1 });
  });

  it("keeps the graph's order and ignores ids that are not strings", () => {
    const metadata = { layer_stats: { nodes: ["fc2", 3, "x"] } };
    expect(watchedOutputs(metadata)).toEqual(["fc2", "x"]);
    expect(withWatched(metadata, ALL, "fc1", true)).toEqual({ layer_stats: { nodes: ["x", "fc1", "fc2"] } });
  });
});
