// The user's projects: open one, or create one, blank or from a model-zoo template (saved as v1);
// archive one (hidden from the list until shown with the "Archived" filter) or delete it with its
// versions, runs, datasets and their files.
import { useCallback, useEffect, useState, type FormEvent } from "react";
import { Link, useNavigate } from "react-router-dom";
import { errorMessage } from "../api/client";
import type { Catalog, GraphVersionSummary, Project } from "../api/types";
import { createProject, deleteProject, fetchCatalog, fetchLatestVersion, fetchProjects, saveVersion, setProjectArchived } from "./api";
import { ConfirmDialog } from "./ConfirmDialog";
import "./editor.css";

type Latest = { latest: GraphVersionSummary | null; count: number };

export function ProjectsPage() {
  const navigate = useNavigate();
  const [projects, setProjects] = useState<Project[] | null>(null);
  const [latest, setLatest] = useState<Record<number, Latest>>({});
  const [catalog, setCatalog] = useState<Catalog | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [creating, setCreating] = useState(false);
  const [name, setName] = useState("");
  const [template, setTemplate] = useState("");
  const [busy, setBusy] = useState(false);
  const [createError, setCreateError] = useState<string | null>(null);
  const [archived, setArchived] = useState<"false" | "true" | "all">("false");
  const [deleting, setDeleting] = useState<Project | null>(null);

  const load = useCallback(() => {
    fetchProjects(archived)
      .then((list) => {
        setProjects(list);
        // The project list does not carry versions; each row asks for its newest one.
        for (const project of list) {
          fetchLatestVersion(project.id)
            .then((found) => setLatest((current) => ({ ...current, [project.id]: found })))
            .catch(() => undefined);
        }
      })
      .catch((caught) => setError(errorMessage(caught)));
  }, [archived]);

  useEffect(load, [load]);
  useEffect(() => {
    fetchCatalog().then(setCatalog).catch(() => setCatalog(null));
  }, []);

  async function toggleArchived(project: Project) {
    setError(null);
    try {
      await setProjectArchived(project.id, !project.archived_at);
      load();
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }

  async function create(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setCreateError(null);
    try {
      const chosen = catalog?.templates.find((candidate) => candidate.name === template);
      const project = await createProject(name.trim(), chosen ? String(chosen.description ?? "") : "");
      if (chosen) await saveVersion(project.id, chosen.editor_document, `from the ${String(chosen.title ?? chosen.name)} template`);
      navigate(`/projects/${project.id}`);
    } catch (caught) {
      setCreateError(errorMessage(caught));
      setBusy(false);
    }
  }

  return (
    <div className="nf-projects">
      <div className="nf-projects-head">
        <h1>Projects</h1>
        <span className="spacer" />
        <label className="nf-inline-label">
          Archived
          <select value={archived} onChange={(event) => setArchived(event.target.value as typeof archived)} data-testid="projects-archived-filter">
            <option value="false">hidden</option>
            <option value="true">only archived</option>
            <option value="all">shown too</option>
          </select>
        </label>
        {!creating && <button className="primary" onClick={() => setCreating(true)}>New project</button>}
      </div>
      {creating && (
        <form className="card nf-new-project" onSubmit={create} aria-label="New project">
          <label>
            Name
            <input data-testid="project-name" value={name} onChange={(event) => setName(event.target.value)} required maxLength={200} autoFocus />
          </label>
          <label>
            Start from
            <select aria-label="Start from" value={template} onChange={(event) => {
              setTemplate(event.target.value);
              const chosen = catalog?.templates.find((candidate) => candidate.name === event.target.value);
              if (chosen && !name.trim()) setName(String(chosen.title ?? chosen.name));
            }}>
              <option value="">a blank canvas</option>
              {catalog?.templates.map((item) => (
                <option key={item.name} value={item.name}>{String(item.title ?? item.name)} — {String(item.description ?? "")}</option>
              ))}
            </select>
          </label>
          {createError && <div className="error-box" role="alert">{createError}</div>}
          <div className="nf-form-actions">
            <button type="button" onClick={() => { setCreating(false); setCreateError(null); }}>Cancel</button>
            <button type="submit" className="primary" disabled={busy || !name.trim()}>Create</button>
          </div>
        </form>
      )}
      {error && <div className="error-box" role="alert">{error}</div>}
      {!projects ? <div className="loading">Loading…</div> : projects.length === 0 ? (
        <div className="card muted">{archived === "true" ? "No archived projects." : "No projects yet. Create one, blank or from a template."}</div>
      ) : (
        <table className="data">
          <thead>
            <tr><th>Name</th><th>Latest version</th><th>Updated</th><th /></tr>
          </thead>
          <tbody>
            {projects.map((project) => {
              const row = latest[project.id];
              return (
                <tr key={project.id} data-testid={`project-row-${project.id}`}>
                  <td>
                    <Link to={`/projects/${project.id}`} data-testid={`project-link-${project.id}`}>{project.name}</Link>
                    {project.archived_at && <span className="badge archived">archived</span>}
                    {project.description && <div className="muted nf-help">{project.description}</div>}
                  </td>
                  <td>{!row ? "…" : row.latest ? <>v{row.latest.number} <span className="muted">{row.latest.message}</span></> : <span className="muted">not saved</span>}</td>
                  <td>{new Date(row?.latest && row.latest.created_at > project.updated_at ? row.latest.created_at : project.updated_at).toLocaleString()}</td>
                  <td className="nf-project-actions">
                    <Link to={`/projects/${project.id}/runs`}>Runs</Link>
                    <button type="button" className="small" onClick={() => void toggleArchived(project)} data-testid={`project-archive-${project.id}`}
                      aria-label={`${project.archived_at ? "Unarchive" : "Archive"} ${project.name}`}>{project.archived_at ? "Unarchive" : "Archive"}</button>
                    <button type="button" className="small danger" onClick={() => setDeleting(project)} data-testid={`project-delete-${project.id}`}
                      aria-label={`Delete ${project.name}`}>Delete</button>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {deleting && (
        <ConfirmDialog title={`Delete project ${deleting.name}?`} confirmLabel="Delete project" onClose={() => setDeleting(null)}
          onConfirm={async () => { await deleteProject(deleting.id); setDeleting(null); load(); }}>
          <p>
            Its {latest[deleting.id]?.count ?? "saved"} graph version(s), its runs with their curves and checkpoints, and the datasets
            added to it are deleted with their files. This cannot be undone; archive it to only hide it.
          </p>
          <p className="muted">Models published from its runs keep serving their own copies. Queued or running runs must be cancelled first.</p>
        </ConfirmDialog>
      )}
    </div>
  );
}
