// A modal question before an action that cannot be undone (deleting a run, a project, a dataset):
// it says what goes and what stays, and shows the server's refusal in place (a 409 names what
// still depends on the item), so the user is not left guessing why nothing happened.
import { useEffect, useRef, useState, type ReactNode } from "react";
import { errorMessage } from "../api/client";
import { Modal } from "./dialogs";
import "./editor.css";

export function ConfirmDialog({ title, children, confirmLabel, onConfirm, onClose }: {
  title: string;
  children: ReactNode;
  confirmLabel: string;
  /** Runs the action; a rejection is shown in the dialog, which stays open. */
  onConfirm(): Promise<void>;
  onClose(): void;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const cancel = useRef<HTMLButtonElement>(null);
  useEffect(() => cancel.current?.focus(), []); // the safe choice has the focus
  async function confirm() {
    setBusy(true);
    setError(null);
    try {
      await onConfirm();
    } catch (caught) {
      setError(errorMessage(caught));
      setBusy(false);
    }
  }
  return (
    <Modal title={title} onClose={onClose}>
      <div className="nf-confirm-text">{children}</div>
      {error && <div className="error-box" role="alert" data-testid="confirm-error">{error}</div>}
      <div className="nf-form-actions">
        <button type="button" ref={cancel} onClick={onClose}>Cancel</button>
        <button type="button" className="danger" onClick={() => void confirm()} disabled={busy} data-testid="confirm-action">
          {busy ? "Working…" : confirmLabel}
        </button>
      </div>
    </Modal>
  );
}
