// The editor's keyboard shortcuts, in one registry: the keydown hook (useShortcuts) runs them, the
// `?` overlay lists them, and the toolbar's tooltips name them.

/** What a shortcut can do; the editor supplies one function for each. */
export interface ShortcutCommands {
  undo(): void;
  redo(): void;
  copy(): void;
  paste(): void;
  selectAll(): void;
  save(): void;
  autoLayout(): void;
  fitView(): void;
  removeSelection(): void;
  showShortcuts(): void;
}

export type ShortcutAction = keyof ShortcutCommands;

export interface Shortcut {
  /** Key combinations, e.g. "Mod+Shift+Z" (Mod is Ctrl, or ⌘ on a Mac); any one of them runs it. */
  keys: string[];
  description: string;
  action: ShortcutAction;
  /** Let the browser handle the key too (copying also fills the system clipboard's selection). */
  keepDefault?: boolean;
}

export const SHORTCUTS: readonly Shortcut[] = [
  { keys: ["Mod+Z"], description: "Undo", action: "undo" },
  { keys: ["Mod+Shift+Z", "Mod+Y"], description: "Redo", action: "redo" },
  { keys: ["Mod+C"], description: "Copy the selected nodes", action: "copy", keepDefault: true },
  { keys: ["Mod+V"], description: "Paste the copied nodes", action: "paste" },
  { keys: ["Mod+A"], description: "Select every node and edge", action: "selectAll" },
  { keys: ["Delete", "Backspace"], description: "Delete the selection", action: "removeSelection" },
  { keys: ["Mod+S"], description: "Save a version", action: "save" },
  { keys: ["L"], description: "Lay the graph out", action: "autoLayout" },
  { keys: ["F"], description: "Fit the graph to the view", action: "fitView" },
  { keys: ["?"], description: "Show the keyboard shortcuts", action: "showShortcuts" },
];

/** The parts of a keyboard event a shortcut looks at. */
export interface KeyPress {
  key: string;
  ctrlKey: boolean;
  metaKey: boolean;
  shiftKey: boolean;
  altKey: boolean;
}

/** Whether a key press is the combination `spec`. Ctrl, ⌘ and Alt must be exactly as written; so
 *  must Shift for letters, while a character that Shift types (`?`) says it by itself. */
export function matchesKeys(spec: string, press: KeyPress): boolean {
  const parts = spec.split("+");
  const key = parts[parts.length - 1].toLowerCase();
  const modifiers = new Set(parts.slice(0, -1));
  if ((press.ctrlKey || press.metaKey) !== modifiers.has("Mod")) return false;
  if (press.altKey !== modifiers.has("Alt")) return false;
  if (/^[a-z]$/.test(key) && press.shiftKey !== modifiers.has("Shift")) return false;
  return press.key.toLowerCase() === key;
}

/** The shortcut a key press runs, if any. */
export function findShortcut(press: KeyPress, shortcuts: readonly Shortcut[] = SHORTCUTS): Shortcut | undefined {
  return shortcuts.find((shortcut) => shortcut.keys.some((spec) => matchesKeys(spec, press)));
}

/** A combination as people read it: "Mod+Shift+Z" as "Ctrl+Shift+Z". */
export function keyLabel(spec: string): string {
  return spec.replace(/^Mod\+/, "Ctrl+");
}

/** Every combination of an action, for a tooltip: "Ctrl+Shift+Z / Ctrl+Y". */
export function shortcutTitle(action: ShortcutAction, shortcuts: readonly Shortcut[] = SHORTCUTS): string {
  return shortcuts.filter((shortcut) => shortcut.action === action).flatMap((shortcut) => shortcut.keys.map(keyLabel)).join(" / ");
}

/** Whether a key press goes into a form field (where keys type, not command). */
export function isTyping(target: EventTarget | null): boolean {
  const element = target as HTMLElement | null;
  if (!element || typeof element.tagName !== "string") return false;
  return ["INPUT", "TEXTAREA", "SELECT"].includes(element.tagName) || element.isContentEditable;
}
