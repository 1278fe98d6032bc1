// A dataset's controls: rename, archive (hidden from the lists and the train panel; its runs keep
// it) and delete (a 409 names the runs and endpoints that need it), and
// its view (how a graph receives each sample: flat, image C x H x W, sequence T x F).
import { useState } from "react";
import { useNavigate } from "react-router-dom";
import { api, errorMessage } from "../api/client";
import type { Dataset } from "../api/types";
import { ConfirmDialog } from "../editor/ConfirmDialog";
import { formatBytes } from "./schema";
import { formToView, viewToForm, type ViewForm } from "./viewForm";

export function DatasetActions({ dataset, onChange }: { dataset: Dataset; onChange(dataset: Dataset): void }) {
  const navigate = useNavigate();
  const [name, setName] = useState(dataset.name);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [confirming, setConfirming] = useState(false);

  async function toggleArchived() {
    setBusy(true);
    setError(null);
    try {
      onChange(await api<Dataset>(`/api/datasets/${dataset.id}`, { method: "PATCH", json: { archived: !dataset.archived_at } }));
    } catch (caught) {
      setError(errorMessage(caught));
    } finally {
      setBusy(false);
    }
  }

  async function rename() {
    setBusy(true);
    setError(null);
    try {
      onChange(await api<Dataset>(`/api/datasets/${dataset.id}`, { method: "PATCH", json: { name: name.trim() } }));
    } catch (caught) {
      setError(errorMessage(caught));
    } finally {
      setBusy(false);
    }
  }

  async function remove() {
    await api(`/api/datasets/${dataset.id}`, { method: "DELETE" }); // a 409 names the runs and endpoints that need it
    navigate("/datasets");
  }

  return (
    <div className="row dataset-actions">
      <input aria-label="Dataset name" value={name} onChange={(event) => setName(event.target.value)} maxLength={200} />
      <button onClick={() => void rename()} disabled={busy || !name.trim() || name.trim() === dataset.name}>Rename</button>
      <div className="spacer" />
      {dataset.archived_at && <span className="badge archived">archived</span>}
      <button onClick={() => void toggleArchived()} disabled={busy} data-testid="dataset-archive">{dataset.archived_at ? "Unarchive" : "Archive"}</button>
      <button className="danger" onClick={() => setConfirming(true)} disabled={busy} data-testid="dataset-delete">Delete</button>
      {error && <div className="error-box" role="alert">{error}</div>}
      {confirming && (
        <ConfirmDialog title={`Delete dataset ${dataset.name}?`} confirmLabel="Delete dataset" onClose={() => setConfirming(false)} onConfirm={remove}>
          <p>The record, its stored file and its converted data{dataset.size_bytes ? ` (${formatBytes(dataset.size_bytes)})` : ""} are deleted. This cannot be undone; archive it to only hide it.</p>
          <p className="muted">Refused while runs use it or endpoints serve a model trained on it: delete those first.</p>
        </ConfirmDialog>
      )}
    </div>
  );
}

export function ViewEditor({ dataset, onChange }: { dataset: Dataset; onChange(dataset: Dataset): void }) {
  const [form, setForm] = useState<ViewForm>(() => viewToForm(dataset.view));
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function save() {
    const checked = formToView(form);
    if ("error" in checked) {
      setError(checked.error);
      return;
    }
    setBusy(true);
    setError(null);
    try {
      onChange(await api<Dataset>(`/api/datasets/${dataset.id}`, { method: "PATCH", json: { view: checked.view } }));
    } catch (caught) {
      setError(errorMessage(caught));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="card" data-testid="dataset-view">
      <h2>View</h2>
      <p className="muted small">How a graph receives each sample: as stored, one flat row, an image (channels × height × width) or a sequence (steps × features).</p>
      <div className="row dataset-actions">
        <select aria-label="View" value={form.kind} onChange={(event) => setForm({ ...form, kind: event.target.value as ViewForm["kind"] })}>
          <option value="">as stored</option>
          <option value="flat">flat</option>
          <option value="image">image</option>
          <option value="sequence">sequence</option>
        </select>
        {(form.kind === "image" || form.kind === "sequence") && (
          <input aria-label="View shape" value={form.shape} placeholder={form.kind === "image" ? "1, 28, 28" : "20, 3"}
            onChange={(event) => setForm({ ...form, shape: event.target.value })} />
        )}
        {form.kind === "image" && (
          <select aria-label="Image layout" value={form.layout} onChange={(event) => setForm({ ...form, layout: event.target.value as ViewForm["layout"] })}>
            <option value="chw">stored channels first</option>
            <option value="hwc">stored channels last</option>
          </select>
        )}
        <button onClick={() => void save()} disabled={busy}>Use this view</button>
      </div>
      {error && <div className="error-box" role="alert">{error}</div>}
    </section>
  );
}
