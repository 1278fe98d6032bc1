// Saved versions: load one, or compare two (or one with the canvas). The diff is listed, drawn as
// one graph in a dialog, and, while the canvas holds the newer side, its added and changed nodes
// are outlined on the canvas. A draft (work in progress saved with its errors) is marked, and
// promoted to the next ordinary version once its graph is valid.
import { useCallback, useEffect, useMemo, useState } from "react";
import type { EditorDocument, GraphVersion, GraphVersionSummary } from "../api/types";
import { errorMessage } from "../api/client";
import { diffDocuments, formatChangeValue, isEmptyDiff, type GraphDiff } from "../graph/diff";
import { fetchVersion, promoteDraft, saveProblems } from "./api";
import { useEditorStore, type DiffMark } from "./store";
import { VersionDiffDialog } from "./VersionDiffDialog";

interface VersionsPanelProps {
  projectId: number;
  versions: GraphVersionSummary[];
  loadedVersionId: number | null;
  canvas: EditorDocument;
  onLoad(version: GraphVersion): void;
  onSelectNode(nodeId: string): void;
  onClose(): void;
}

const CANVAS = "canvas";

export function VersionsPanel({ projectId, versions, loadedVersionId, canvas, onLoad, onSelectNode, onClose }: VersionsPanelProps) {
  const [documents, setDocuments] = useState<Record<number, GraphVersion>>({});
  const [from, setFrom] = useState<string>(() => (loadedVersionId ? String(loadedVersionId) : versions[0] ? String(versions[0].id) : ""));
  const [to, setTo] = useState<string>(CANVAS);
  const [error, setError] = useState<string | null>(null);
  const [drawn, setDrawn] = useState<{ before: EditorDocument; after: EditorDocument; beforeLabel: string; afterLabel: string } | null>(null);
  const setDiffMarks = useEditorStore((state) => state.setDiffMarks);
  const ops = useEditorStore((state) => state.ops);
  const lookup = useCallback((name: string) => ops.get(name), [ops]);

  async function version(id: number): Promise<GraphVersion> {
    if (documents[id]) return documents[id];
    const loaded = await fetchVersion(projectId, id);
    setDocuments((current) => ({ ...current, [id]: loaded }));
    return loaded;
  }

  useEffect(() => {
    for (const choice of [from, to]) {
      if (choice && choice !== CANVAS && !documents[Number(choice)]) version(Number(choice)).catch((caught) => setError(errorMessage(caught)));
    }
  }, [from, to]);

  const documentOf = (choice: string): EditorDocument | undefined => (choice === CANVAS ? canvas : documents[Number(choice)]?.editor_document);
  const before = documentOf(from);
  const after = documentOf(to);
  const diff: GraphDiff | null = useMemo(() => (before && after ? diffDocuments(before, after) : null), [before, after]);
  // Outlines mark nodes by id, so they only mean something on a canvas that holds the newer side
  // (positions aside); on any other they would mark the wrong graph.
  const canvasShowsAfter = useMemo(() => to === CANVAS || (!!after && isEmptyDiff(diffDocuments(after, canvas))), [to, after, canvas]);

  useEffect(() => {
    const marks: Record<string, DiffMark> = {};
    if (diff && canvasShowsAfter) {
      for (const node of diff.addedNodes) marks[node.id] = "added";
      for (const node of diff.changedNodes) marks[node.id] = "changed";
    }
    setDiffMarks(marks);
  }, [diff, canvasShowsAfter, setDiffMarks]);
  useEffect(() => () => setDiffMarks({}), [setDiffMarks]);

  async function promote(item: GraphVersionSummary) {
    setError(null);
    try {
      const promoted = await promoteDraft(projectId, item.id);
      setDocuments((current) => ({ ...current, [promoted.id]: promoted }));
      useEditorStore.getState().versionSaved(promoted, promoted.editor_document);
    } catch (caught) {
      setError(`v${item.number} cannot be promoted: ${saveProblems(caught).join("; ")}`);
    }
  }

  async function load(id: number) {
    try {
      onLoad(await version(id));
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }

  // A node of the newer side can be shown on the canvas only while the canvas holds that side.
  const nodeLink = (sign: string, nodeId: string) => (canvasShowsAfter
    ? <button className="link" onClick={() => onSelectNode(nodeId)}>{sign} {nodeId}</button>
    : <>{sign} {nodeId}</>);
  const label = (choice: string) => (choice === CANVAS ? "the canvas" : `v${versions.find((v) => String(v.id) === choice)?.number ?? "?"}`);

  return (
    <aside className="nf-versions" aria-label="Versions">
      <header className="nf-versions-header">
        <h2>Versions</h2>
        <button className="link" onClick={onClose} aria-label="Close versions">✕</button>
      </header>
      {error && <div className="error-box" role="alert">{error}</div>}
      {versions.length === 0 ? <p className="muted">Nothing saved yet. Save creates version 1.</p> : (
        <ol className="nf-version-list">
          {versions.map((item) => (
            <li key={item.id} className={item.id === loadedVersionId ? "current" : undefined}>
              <div>
                <strong>v{item.number}</strong>{item.draft && <span className="badge draft" data-testid={`version-draft-${item.number}`}>draft</span>}
                {" "}<span className="muted">{new Date(item.created_at).toLocaleString()}</span>
                <div>{item.message || <span className="muted">no message</span>}</div>
              </div>
              {item.draft && (
                <button onClick={() => void promote(item)} aria-label={`Promote draft version ${item.number}`}
                  title="Save this draft as the next ordinary version (it must be valid)">Promote</button>
              )}
              <button onClick={() => void load(item.id)} aria-label={`Load version ${item.number}`}>Load</button>
            </li>
          ))}
        </ol>
      )}
      {versions.length > 0 && (
        <section className="nf-diff" aria-label="Compare versions">
          <h3>Compare</h3>
          <div className="nf-diff-pick">
            <select aria-label="Compare from" value={from} onChange={(event) => setFrom(event.target.value)}>
              {versions.map((item) => <option key={item.id} value={String(item.id)}>v{item.number}</option>)}
              <option value={CANVAS}>canvas</option>
            </select>
            <span>→</span>
            <select aria-label="Compare to" value={to} onChange={(event) => setTo(event.target.value)}>
              <option value={CANVAS}>canvas</option>
              {versions.map((item) => <option key={item.id} value={String(item.id)}>v{item.number}</option>)}
            </select>
          </div>
          {!diff ? <p className="muted">Loading…</p> : isEmptyDiff(diff) ? <p className="muted">No differences between {label(from)} and {label(to)}.</p> : (
            <>
            <button data-testid="draw-diff" disabled={!before || !after}
              onClick={() => before && after && setDrawn({ before, after, beforeLabel: label(from), afterLabel: label(to) })}>
              Draw the difference
            </button>
            <p className="muted nf-diff-note">
              {canvasShowsAfter ? "Added and changed nodes are outlined on the canvas." : `The canvas does not hold ${label(to)}, so nothing is outlined on it.`}
            </p>
            <ul className="nf-diff-list">
              {diff.addedNodes.map((node) => (
                <li key={`+${node.id}`} className="added">{nodeLink("+", node.id)} <span className="muted">{node.type}</span></li>
              ))}
              {diff.removedNodes.map((node) => <li key={`-${node.id}`} className="removed">− {node.id} <span className="muted">{node.type}</span></li>)}
              {diff.changedNodes.map((node) => (
                <li key={`~${node.id}`} className="changed">
                  {nodeLink("~", node.id)}
                  <ul>{node.changes.map((change) => (
                    <li key={change.field}><code>{change.field}</code>: {formatChangeValue(change.before)} → {formatChangeValue(change.after)}</li>
                  ))}</ul>
                </li>
              ))}
              {diff.addedEdges.map((edge) => <li key={`+e${edge.id}`} className="added">+ edge {edge.source}.{edge.sourceHandle} → {edge.target}.{edge.targetHandle}</li>)}
              {diff.removedEdges.map((edge) => <li key={`-e${edge.id}`} className="removed">− edge {edge.source}.{edge.sourceHandle} → {edge.target}.{edge.targetHandle}</li>)}
            </ul>
            </>
          )}
        </section>
      )}
      {drawn && <VersionDiffDialog {...drawn} lookup={lookup} onClose={() => setDrawn(null)} />}
    </aside>
  );
}
