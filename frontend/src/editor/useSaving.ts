// Saving the canvas as a new version: the dialog's state, the call, and what follows a save
// (training asks for a save first and continues with the saved version). A draft is saved whatever
// its errors and does not continue into training.
import { useCallback, useRef, useState } from "react";
import type { GraphVersion } from "../api/types";
import { saveDraft as saveDraftVersion, saveProblems, saveVersion } from "./api";
import { useEditorStore } from "./store";

export interface Saving {
  isOpen: boolean;
  busy: boolean;
  problems: string[];
  /** Open the save dialog; `then` runs with the version once it is saved. */
  open(then?: (version: GraphVersion) => void): void;
  close(): void;
  save(message: string): Promise<void>;
  saveDraft(message: string): Promise<void>;
}

export function useSaving(projectId: number, notify: (message: string) => void): Saving {
  const [isOpen, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  const [problems, setProblems] = useState<string[]>([]);
  const afterSave = useRef<((version: GraphVersion) => void) | null>(null);

  const open = useCallback((then?: (version: GraphVersion) => void) => {
    afterSave.current = then ?? null;
    setProblems([]);
    setOpen(true);
  }, []);
  const close = useCallback(() => {
    setOpen(false);
    afterSave.current = null;
  }, []);
  const save = useCallback(async (message: string) => {
    setBusy(true);
    setProblems([]);
    const { document, versionSaved } = useEditorStore.getState();
    try {
      const version = await saveVersion(projectId, document, message);
      versionSaved(version, document);
      setOpen(false);
      notify(`Saved version ${version.number}`);
      const then = afterSave.current;
      afterSave.current = null;
      then?.(version);
    } catch (caught) {
      setProblems(saveProblems(caught));
    } finally {
      setBusy(false);
    }
  }, [projectId, notify]);
  const saveDraft = useCallback(async (message: string) => {
    setBusy(true);
    setProblems([]);
    const { document, versionSaved } = useEditorStore.getState();
    try {
      const version = await saveDraftVersion(projectId, document, message);
      versionSaved(version, document);
      setOpen(false);
      afterSave.current = null; // a draft is not trained
      notify(`Saved draft version ${version.number}: it cannot be trained until it is promoted`);
    } catch (caught) {
      setProblems(saveProblems(caught));
    } finally {
      setBusy(false);
    }
  }, [projectId, notify]);
  return { isOpen, busy, problems, open, close, save, saveDraft };
}
