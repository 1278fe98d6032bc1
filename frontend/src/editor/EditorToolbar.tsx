// The bar above the canvas: where the project is, unsaved changes, and the editor's commands.
import { useRef } from "react";
import { Link } from "react-router-dom";
import type { Project } from "../api/types";
import { OnnxImportButton } from "./OnnxImport";
import { shortcutTitle } from "./shortcuts";
import { selectDirty, useEditorStore } from "./store";

interface EditorToolbarProps {
  project: Project;
  versionsOpen: boolean;
  onToggleVersions(): void;
  onAutoLayout(): void;
  onFit(): void;
  onExportJson(): void;
  onImportJson(file: File): void;
  onExportPython(): void;
  onSave(): void;
  onTrain(): void;
  onShowShortcuts(): void;
}

export function EditorToolbar(props: EditorToolbarProps) {
  const { project, versionsOpen } = props;
  const loadedVersion = useEditorStore((state) => state.loadedVersion);
  const dirty = useEditorStore(selectDirty);
  const canUndo = useEditorStore((state) => state.canUndo);
  const canRedo = useEditorStore((state) => state.canRedo);
  const { undo, redo } = useEditorStore.getState();
  const fileInput = useRef<HTMLInputElement>(null);
  const pythonTitle = !loadedVersion ? "Save a version first"
    : loadedVersion.draft ? "A draft is not exported: promote it first (Versions)"
    : `A Python script of v${loadedVersion.number}${dirty ? " (the saved version, not the unsaved canvas)" : ""}`;
  return (
    <div className="nf-toolbar" role="toolbar" aria-label="Editor">
      <Link to="/projects" className="muted">Projects</Link>
      <span aria-hidden>/</span>
      <strong className="nf-project-name">{project.name}</strong>
      <span className="muted">{loadedVersion ? `v${loadedVersion.number}` : "not saved yet"}</span>
      {loadedVersion?.draft && <span className="badge draft" data-testid="draft-badge" title="Work in progress: it cannot be trained until it is promoted (Versions)">draft</span>}
      {dirty && <span className="nf-unsaved" data-testid="unsaved" title="The canvas differs from the loaded version">● unsaved changes</span>}
      <span className="spacer" />
      <button onClick={undo} disabled={!canUndo} title={shortcutTitle("undo")}>Undo</button>
      <button onClick={redo} disabled={!canRedo} title={shortcutTitle("redo")}>Redo</button>
      <button onClick={props.onAutoLayout} title={shortcutTitle("autoLayout")}>Auto layout</button>
      <button onClick={props.onFit} title={shortcutTitle("fitView")}>Fit view</button>
      <span className="nf-toolbar-sep" />
      <button onClick={props.onToggleVersions} aria-pressed={versionsOpen}>Versions</button>
      <button onClick={props.onExportJson}>Export JSON</button>
      <button onClick={() => fileInput.current?.click()}>Import JSON</button>
      <input ref={fileInput} type="file" accept="application/json,.json" hidden aria-hidden
        onChange={(event) => {
          const file = event.target.files?.[0];
          event.target.value = "";
          if (file) props.onImportJson(file);
        }} />
      <OnnxImportButton projectId={project.id} />
      <button onClick={props.onExportPython} disabled={!loadedVersion || loadedVersion.draft} title={pythonTitle}>Export Python</button>
      <span className="nf-toolbar-sep" />
      <Link to={`/projects/${project.id}/runs`}>Runs</Link>
      <button onClick={props.onSave} title={shortcutTitle("save")}>Save</button>
      <button className="primary" onClick={props.onTrain}>Train</button>
      <button onClick={props.onShowShortcuts} title={`Keyboard shortcuts (${shortcutTitle("showShortcuts")})`} aria-label="Keyboard shortcuts">?</button>
    </div>
  );
}
