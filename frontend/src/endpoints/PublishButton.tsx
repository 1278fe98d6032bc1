// "Publish": a succeeded run becomes the next version of an endpoint (created when new). For the
// run page: <PublishButton runId={run.id} />.
import { useState, type FormEvent } from "react";
import { Link } from "react-router-dom";
import { api, errorMessage } from "../api/client";
import type { ModelVersion } from "./types";
import "./endpoints.css";

const NAME_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/;

export function PublishButton({ runId, disabled }: { runId: number; disabled?: boolean }) {
  const [open, setOpen] = useState(false);
  const [name, setName] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [published, setPublished] = useState<(ModelVersion & { endpoint: string }) | null>(null);

  async function submit(event: FormEvent) {
    event.preventDefault();
    if (!NAME_PATTERN.test(name)) {
      setError("lowercase letters, digits and dashes, starting and ending with a letter or digit");
      return;
    }
    setBusy(true);
    setError(null);
    try {
      setPublished(await api<ModelVersion & { endpoint: string }>(`/api/runs/${runId}/publish`, {
        method: "POST", json: { endpoint: name },
      }));
    } catch (caught) {
      setError(errorMessage(caught));
    } finally {
      setBusy(false);
    }
  }

  if (published) {
    return (
      <span className="publish-done">
        Published as <Link to={`/endpoints/${published.endpoint}`}>{published.endpoint} v{published.number}</Link>
      </span>
    );
  }
  if (!open) {
    return (
      <button type="button" disabled={disabled} onClick={() => setOpen(true)}
              title="Serve this run's model at a REST and gRPC endpoint">
        Publish
      </button>
    );
  }
  return (
    <form className="publish-form" onSubmit={submit}>
      <label>
        Endpoint name{" "}
        <input value={name} onChange={(event) => setName(event.target.value.toLowerCase())} placeholder="digits"
               autoFocus maxLength={64} />
      </label>
      <button type="submit" disabled={busy || !name}>{busy ? "Publishing…" : "Publish"}</button>
      <button type="button" onClick={() => setOpen(false)} disabled={busy}>Cancel</button>
      {error && <p className="error">{error}</p>}
    </form>
  );
}
