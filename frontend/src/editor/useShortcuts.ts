// One keydown listener for the editor's shortcut registry (shortcuts.ts).
import { useEffect, useRef } from "react";
import { findShortcut, isTyping, type ShortcutCommands } from "./shortcuts";

/** Run the registry's shortcuts on the window's key presses while `enabled`; never while the key
 *  goes into a form field or a dialog (a block, the save dialog, the shortcuts overlay) has it. */
export function useShortcuts(commands: ShortcutCommands, enabled: boolean): void {
  const latest = useRef(commands);
  latest.current = commands;
  useEffect(() => {
    if (!enabled) return;
    const onKey = (event: KeyboardEvent) => {
      if (isTyping(event.target) || document.querySelector("[aria-modal='true']")) return;
      const shortcut = findShortcut(event);
      if (!shortcut) return;
      if (!shortcut.keepDefault) event.preventDefault();
      latest.current[shortcut.action]();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [enabled]);
}
