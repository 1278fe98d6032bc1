import { describe, expect, it } from "vitest";
import { History } from "./history";

describe("History", () => {
  it("undoes and redoes steps", () => {
    const history = new History("a");
    history.push("b", null, 0);
    history.push("c", null, 10);
    expect(history.undo()).toBe("b");
    expect(history.undo()).toBe("a");
    expect(history.undo()).toBeUndefined();
    expect(history.redo()).toBe("b");
    expect(history.present).toBe("b");
    expect(history.canRedo).toBe(true);
  });

  it("drops the redo branch on a new change", () => {
    const history = new History(1);
    history.push(2, null, 0);
    history.undo();
    history.push(3, null, 5);
    expect(history.canRedo).toBe(false);
    expect(history.undo()).toBe(1);
  });

  it("coalesces changes with the same key within the window (a drag, typing)", () => {
    const history = new History("");
    history.push("h", "label", 0);
    history.push("he", "label", 200);
    history.push("hey", "label", 400);
    expect(history.undo()).toBe("");
  });

  it("does not coalesce across keys, past the window, or after an undo", () => {
    const history = new History(0);
    history.push(1, "move:a", 0);
    history.push(2, "move:b", 10);
    history.push(3, "move:b", 5000);
    expect(history.undo()).toBe(2);
    history.push(4, "move:b", 5001);
    expect(history.undo()).toBe(2);
  });

  it("keeps at most limit steps", () => {
    const history = new History(0, { limit: 2 });
    for (let n = 1; n <= 5; n++) history.push(n, null, n * 10_000);
    expect(history.undo()).toBe(4);
    expect(history.undo()).toBe(3);
    expect(history.undo()).toBeUndefined();
  });

  it("reset forgets everything", () => {
    const history = new History("a");
    history.push("b");
    history.reset("z");
    expect(history.canUndo).toBe(false);
    expect(history.present).toBe("z");
  });
});
