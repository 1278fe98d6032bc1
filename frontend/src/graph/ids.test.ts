import { describe, expect, it } from "vitest";
import { edgeId, idPrefix, nextId } from "./ids";

describe("ids", () => {
  it("numbers new nodes after the highest id of their kind", () => {
    expect(nextId("dense", [])).toBe("dense_1");
    expect(nextId("dense", ["dense_1", "dense_3", "relu_7"])).toBe("dense_4");
    expect(nextId("relu", ["dense_1", "relu"])).toBe("relu_1");
  });

  it("keeps ids to the engine's id pattern", () => {
    expect(idPrefix("2d-thing")).toBe("n_2d_thing");
    expect(nextId("input", ["input_1"])).toBe("input_2");
  });

  it("never reuses an id even when a name looks numbered", () => {
    expect(nextId("dense", ["dense_1", "dense_2"])).toBe("dense_3");
  });

  it("names edges after what they connect, unique", () => {
    const edge = { source: "a", sourceHandle: "out", target: "b", targetHandle: "x" };
    expect(edgeId(edge, [])).toBe("a.out->b.x");
    expect(edgeId(edge, ["a.out->b.x"])).toBe("a.out->b.x#2");
  });
});
