// Archiving and deleting runs: one run's buttons (the run page) and the buttons for the runs ticked
// in the table. Archived runs leave the lists until shown with the "Archived" filter; deleting
// removes the run's curves, checkpoints and files, and the server refuses (409) a queued or
// running run, saying to cancel it first. A model published from a run keeps serving its own copy.
import { useRef, useState } from "react";
import { api, errorMessage } from "../api/client";
import type { Run } from "../api/types";
import { ConfirmDialog } from "../editor/ConfirmDialog";
import { runTitle } from "./runInfo";

/** The runs lists' `archived` filter: hidden (the default), only archived ones, or both. */
export type ArchivedFilter = "false" | "true" | "all";

export function setRunArchived(runId: number, archived: boolean): Promise<Run> {
  return api<Run>(`/api/runs/${runId}`, { method: "PATCH", json: { archived } });
}

export function deleteRun(runId: number): Promise<void> {
  return api<void>(`/api/runs/${runId}`, { method: "DELETE" });
}

const isActive = (run: Run) => run.state === "queued" || run.state === "running";

/** What deleting these runs removes and what it leaves, for the confirm dialog. */
function DeleteConsequences({ runs }: { runs: Run[] }) {
  const active = runs.filter(isActive);
  const published = runs.flatMap((run) => (run.published ?? []).map((version) => `${version.endpoint} v${version.number}`));
  return (
    <>
      <p>
        {runs.length === 1 ? <>Run <strong>{runTitle(runs[0])}</strong></> : <>{runs.length} runs ({runs.map(runTitle).join(", ")})</>}
        {" "}will be deleted with {runs.length === 1 ? "its" : "their"} curves, checkpoints and files. This cannot be undone; archive to only hide {runs.length === 1 ? "it" : "them"}.
      </p>
      {published.length > 0 && (
        <p data-testid="delete-keeps-published">Published as {published.join(", ")}: {published.length === 1 ? "that version keeps" : "those versions keep"} serving {published.length === 1 ? "its" : "their"} own copy of the model.</p>
      )}
      {active.length > 0 && (
        <p className="muted">{active.map(runTitle).join(", ")} {active.length === 1 ? "is" : "are"} still {active.length === 1 ? active[0].state : "queued or running"}: cancel {active.length === 1 ? "it" : "them"} first.</p>
      )}
    </>
  );
}

/** Archive or unarchive, and delete, one run (the run page). */
export function RunLifecycleButtons({ run, onChanged, onDeleted }: { run: Run; onChanged(run: Run): void; onDeleted(): void }) {
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const archived = Boolean(run.archived_at);
  async function toggleArchived() {
    setBusy(true);
    setError(null);
    try {
      onChanged(await setRunArchived(run.id, !archived));
    } catch (caught) {
      setError(errorMessage(caught));
    } finally {
      setBusy(false);
    }
  }
  return (
    <>
      <button type="button" onClick={() => void toggleArchived()} disabled={busy} data-testid="run-archive"
        title={archived ? "Show this run in the runs list again" : "Hide this run from the runs list; nothing is deleted"}>
        {archived ? "Unarchive" : "Archive"}
      </button>
      <button type="button" className="danger" onClick={() => setConfirming(true)} data-testid="run-delete">Delete</button>
      {error && <span className="error-box inline-error" role="alert">{error}</span>}
      {confirming && (
        <ConfirmDialog title={`Delete ${runTitle(run)}?`} confirmLabel="Delete run" onClose={() => setConfirming(false)}
          onConfirm={async () => { await deleteRun(run.id); onDeleted(); }}>
          <DeleteConsequences runs={[run]} />
        </ConfirmDialog>
      )}
    </>
  );
}

/** Archive, unarchive or delete the runs ticked in the table; `onDone` reloads the table. */
export function RunsBulkActions({ runs, onDone }: { runs: Run[]; onDone(): void }) {
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const someArchived = runs.some((run) => run.archived_at);
  const someShown = runs.some((run) => !run.archived_at);

  async function archive(archived: boolean) {
    setBusy(true);
    setError(null);
    const results = await Promise.allSettled(runs.filter((run) => Boolean(run.archived_at) !== archived).map((run) => setRunArchived(run.id, archived)));
    const failed = results.filter((result): result is PromiseRejectedResult => result.status === "rejected");
    if (failed.length) setError(failed.map((result) => errorMessage(result.reason)).join("; "));
    setBusy(false);
    onDone();
  }

  // Some runs may be deleted and others refused: the dialog stays open with the refusals, and the
  // table is reloaded when it closes (reloading now would unmount it with the selection).
  const deletedSome = useRef(false);
  async function remove() {
    const failures: string[] = [];
    for (const run of runs) {
      try {
        await deleteRun(run.id);
        deletedSome.current = true;
      } catch (caught) {
        failures.push(errorMessage(caught)); // a 409 says to cancel it first
      }
    }
    if (failures.length) throw new Error(failures.join("; "));
    closeDialog();
  }
  function closeDialog() {
    setConfirming(false);
    if (deletedSome.current) {
      deletedSome.current = false;
      onDone();
    }
  }

  return (
    <>
      {someShown && <button type="button" disabled={busy || runs.length === 0} onClick={() => void archive(true)} data-testid="runs-archive">Archive</button>}
      {someArchived && <button type="button" disabled={busy} onClick={() => void archive(false)} data-testid="runs-unarchive">Unarchive</button>}
      <button type="button" className="danger" disabled={busy || runs.length === 0} onClick={() => setConfirming(true)} data-testid="runs-delete">Delete</button>
      {error && <span className="error-box inline-error" role="alert">{error}</span>}
      {confirming && (
        <ConfirmDialog title={runs.length === 1 ? `Delete ${runTitle(runs[0])}?` : `Delete ${runs.length} runs?`}
          confirmLabel={runs.length === 1 ? "Delete run" : `Delete ${runs.length} runs`} onClose={closeDialog} onConfirm={remove}>
          <DeleteConsequences runs={runs} />
        </ConfirmDialog>
      )}
    </>
  );
}
