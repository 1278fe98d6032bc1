// A runs-table cell whose tags or notes are edited in place: the pencil opens a field with the
// current value, Enter (Ctrl+Enter for notes) or Save sends PATCH /api/runs/<id>, Escape or Cancel
// leaves it; the server's complaint shows under the field.
import { useState, type FormEvent, type KeyboardEvent, type ReactNode } from "react";
import { api, errorMessage } from "../api/client";
import type { Run } from "../api/types";
import { parseTags } from "./RunAnnotations";
import { runTitle } from "./runInfo";
import "./published.css";

type Field = "tags" | "notes";

const shown = (run: Run, field: Field) => (field === "tags" ? run.tags.join(", ") : run.notes);

export function InlineAnnotation({ run, field, onSaved, children }: { run: Run; field: Field; onSaved(run: Run): void; children: ReactNode }) {
  const [value, setValue] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const label = `${field === "tags" ? "Tags" : "Notes"} of ${runTitle(run)}`;

  if (value === null) {
    return (
      <span className="inline-annotation">
        {children}
        <button type="button" className="inline-edit" aria-label={`Edit ${label.toLowerCase()}`} title={`Edit ${field}`}
          onClick={() => {
            setValue(shown(run, field));
            setError(null);
          }}>✎</button>
      </span>
    );
  }

  async function save(event?: FormEvent) {
    event?.preventDefault();
    if (value === null) return;
    setSaving(true);
    try {
      const body = field === "tags" ? { tags: parseTags(value) } : { notes: value };
      onSaved(await api<Run>(`/api/runs/${run.id}`, { method: "PATCH", json: body }));
      setValue(null);
    } catch (caught) {
      setError(errorMessage(caught));
    } finally {
      setSaving(false);
    }
  }
  function keys(event: KeyboardEvent) {
    if (event.key === "Escape") setValue(null);
    else if (event.key === "Enter" && field === "notes" && (event.ctrlKey || event.metaKey)) void save();
  }
  return (
    <form className="inline-annotation editing" onSubmit={save} onKeyDown={keys}>
      {field === "tags" ? (
        <input aria-label={label} value={value} placeholder="baseline, small-lr" autoFocus disabled={saving}
          onChange={(event) => setValue(event.target.value)} />
      ) : (
        <textarea aria-label={label} value={value} rows={3} autoFocus disabled={saving} placeholder="Ctrl+Enter saves"
          onChange={(event) => setValue(event.target.value)} />
      )}
      <span className="inline-actions">
        <button type="submit" className="primary" disabled={saving}>Save</button>
        <button type="button" onClick={() => setValue(null)} disabled={saving}>Cancel</button>
      </span>
      {error && <span className="field-error" role="alert">{error}</span>}
    </form>
  );
}
