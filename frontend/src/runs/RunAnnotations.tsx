// A run's name, tags and notes: the only fields of a run that change after it starts (PATCH).
import { useEffect, useState, type FormEvent } from "react";
import { api, ApiError, errorMessage } from "../api/client";
import type { Run } from "../api/types";

export function parseTags(text: string): string[] {
  return [...new Set(text.split(",").map((tag) => tag.trim()).filter(Boolean))];
}

export function RunAnnotations({ run, onSaved }: { run: Run; onSaved(run: Run): void }) {
  const [name, setName] = useState(run.name);
  const [tags, setTags] = useState(run.tags.join(", "));
  const [notes, setNotes] = useState(run.notes);
  const [status, setStatus] = useState<{ saving?: boolean; saved?: boolean; error?: string; field?: string }>({});

  const dirty = name !== run.name || tags !== run.tags.join(", ") || notes !== run.notes;
  // Follow the record when another tab or the runs table changes it.
  const recordKey = JSON.stringify([run.id, run.name, run.tags, run.notes]);
  useEffect(() => {
    setName(run.name);
    setTags(run.tags.join(", "));
    setNotes(run.notes);
  }, [recordKey]);

  async function save(event: FormEvent) {
    event.preventDefault();
    setStatus({ saving: true });
    try {
      const saved = await api<Run>(`/api/runs/${run.id}`, { method: "PATCH", json: { name, tags: parseTags(tags), notes } });
      onSaved(saved);
      setStatus({ saved: true });
    } catch (error) {
      const details = error instanceof ApiError && error.details && typeof error.details === "object" ? Object.keys(error.details) : [];
      setStatus({ error: errorMessage(error), field: details[0] });
    }
  }

  return (
    <form className="card annotations" onSubmit={save} aria-label="Run annotations">
      <h2>Notes</h2>
      <label>
        Name
        <input value={name} onChange={(event) => setName(event.target.value)} placeholder={`run ${run.id}`} maxLength={200}
          aria-invalid={status.field === "name" || undefined} />
      </label>
      <label>
        Tags <span className="muted">(comma-separated)</span>
        <input value={tags} onChange={(event) => setTags(event.target.value)} placeholder="baseline, small-lr"
          aria-invalid={status.field === "tags" || undefined} />
      </label>
      <label>
        Notes
        <textarea value={notes} onChange={(event) => setNotes(event.target.value)} rows={4} placeholder="What this run tries, what it showed"
          aria-invalid={status.field === "notes" || undefined} />
      </label>
      {status.error && <div className="error-box" role="alert">{status.error}</div>}
      <div className="row">
        <button type="submit" className="primary" disabled={!dirty || status.saving}>Save</button>
        {status.saved && !dirty && <span className="muted">Saved</span>}
      </div>
    </form>
  );
}
