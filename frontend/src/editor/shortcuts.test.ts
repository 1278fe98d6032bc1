import { describe, expect, it } from "vitest";
import { findShortcut, keyLabel, matchesKeys, SHORTCUTS, shortcutTitle, type KeyPress } from "./shortcuts";

function press(key: string, modifiers: Partial<Omit<KeyPress, "key">> = {}): KeyPress {
  return { key, ctrlKey: false, metaKey: false, shiftKey: false, altKey: false, ...modifiers };
}

describe("the shortcut registry", () => {
  it("finds the action of each documented combination", () => {
    expect(findShortcut(press("z", { ctrlKey: true }))?.action).toBe("undo");
    expect(findShortcut(press("z", { metaKey: true }))?.action).toBe("undo");
    expect(findShortcut(press("Z", { ctrlKey: true, shiftKey: true }))?.action).toBe("redo");
    expect(findShortcut(press("y", { ctrlKey: true }))?.action).toBe("redo");
    expect(findShortcut(press("c", { ctrlKey: true }))?.action).toBe("copy");
    expect(findShortcut(press("v", { ctrlKey: true }))?.action).toBe("paste");
    expect(findShortcut(press("a", { ctrlKey: true }))?.action).toBe("selectAll");
    expect(findShortcut(press("s", { ctrlKey: true }))?.action).toBe("save");
    expect(findShortcut(press("l"))?.action).toBe("autoLayout");
    expect(findShortcut(press("f"))?.action).toBe("fitView");
    expect(findShortcut(press("Delete"))?.action).toBe("removeSelection");
    expect(findShortcut(press("Backspace"))?.action).toBe("removeSelection");
    expect(findShortcut(press("?", { shiftKey: true }))?.action).toBe("showShortcuts");
  });

  it("leaves other combinations to the browser", () => {
    expect(findShortcut(press("z"))).toBeUndefined();
    expect(findShortcut(press("l", { ctrlKey: true }))).toBeUndefined(); // the address bar
    expect(findShortcut(press("f", { altKey: true }))).toBeUndefined();
    expect(findShortcut(press("s", { ctrlKey: true, altKey: true }))).toBeUndefined();
    expect(findShortcut(press("x"))).toBeUndefined();
  });

  it("holds Shift to what is written for letters only", () => {
    expect(matchesKeys("Mod+Z", press("Z", { ctrlKey: true, shiftKey: true }))).toBe(false);
    expect(matchesKeys("?", press("?", { shiftKey: true }))).toBe(true);
  });

  it("gives every action one entry, and lets the browser copy too", () => {
    const actions = SHORTCUTS.map((shortcut) => shortcut.action);
    expect(new Set(actions).size).toBe(actions.length);
    expect(SHORTCUTS.filter((shortcut) => shortcut.keepDefault).map((shortcut) => shortcut.action)).toEqual(["copy"]);
  });

  it("names the combinations as people read them", () => {
    expect(keyLabel("Mod+Shift+Z")).toBe("Ctrl+Shift+Z");
    expect(shortcutTitle("redo")).toBe("Ctrl+Shift+Z / Ctrl+Y");
    expect(shortcutTitle("removeSelection")).toBe("Delete / Backspace");
  });
});
