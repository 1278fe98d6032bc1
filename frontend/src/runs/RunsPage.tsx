// A project's runs as a sortable, filterable table; tick several and compare their curves and
// their configurations.
import { useCallback, useEffect, useMemo, useState } from "react";
import { Link, useParams, useSearchParams } from "react-router-dom";
import { errorMessage } from "../api/client";
import type { Project, Run } from "../api/types";
import { formatDuration, formatValue } from "../charts/chart";
import { higherIsBetter } from "../charts/metrics";
import { fetchProject, fetchProjectRuns } from "./api";
import { ComparePanel } from "./ComparePanel";
import { formatCell, formatPlain } from "./formatting";
import { InlineAnnotation } from "./InlineAnnotation";
import { PublishedBadge } from "./PublishedMark";
import { RunsBulkActions, type ArchivedFilter } from "./RunLifecycle";
import { durationSeconds, formatDateTime, optimizerOf, RUN_STATES, runTitle, stateLabel } from "./runInfo";
import { METRIC_COLUMN_PREFIX, metricNamesOf, nextSort, runColumns, visibleRuns, type RunColumn, type SortOrder } from "./runTable";
import "./runs.css";

const POLL_MS = 4000;

interface Column extends RunColumn {
  render?(run: Run): React.ReactNode;
}

/** How the columns that are more than their sort value draw a cell (metric columns: the value). */
const RENDERS: Partial<Record<string, (run: Run) => React.ReactNode>> = {
  name: (run) => <><Link to={`/runs/${run.id}`}>{runTitle(run)}</Link><PublishedBadge run={run} />{run.archived_at && <span className="badge archived" data-testid={`run-archived-${run.id}`}>archived</span>}</>,
  state: (run) => <span className={`badge ${run.state}`}>{stateLabel(run.state)}</span>,
  version: (run) => `v${run.graph_version_number}`,
  lr: (run) => formatPlain(optimizerOf(run).lr),
  epochs: (run) => `${run.epochs_completed}/${run.hyperparameters.epochs ?? "?"}`,
  duration: (run) => { const seconds = durationSeconds(run); return seconds === null ? "" : formatDuration(seconds); },
  notes: (run) => <span title={run.notes}>{run.notes.split("\n")[0]}</span>,
  created: (run) => formatDateTime(run.created_at),
};

export function RunsPage() {
  const projectId = Number(useParams().projectId);
  const [search, setSearch] = useSearchParams();
  const [project, setProject] = useState<Project | null>(null);
  const [runs, setRuns] = useState<Run[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [selected, setSelected] = useState<number[]>([]);
  const [comparing, setComparing] = useState<number[]>([]);
  const [sort, setSort] = useState<SortOrder>({ key: "created", descending: true });
  const text = search.get("q") ?? "";
  const stateFilter = search.get("state") ?? "";
  const tagFilter = search.get("tag") ?? "";
  const archivedFilter = (search.get("archived") ?? "false") as ArchivedFilter;

  const setFilter = (name: string, value: string) => {
    setSearch((current) => {
      const next = new URLSearchParams(current);
      if (value) next.set(name, value);
      else next.delete(name);
      return next;
    }, { replace: true });
  };

  useEffect(() => {
    fetchProject(projectId).then(setProject).catch(() => setProject(null));
  }, [projectId]);

  const load = useCallback(async () => {
    const query = new URLSearchParams();
    if (stateFilter) query.set("state", stateFilter);
    if (tagFilter) query.set("tag", tagFilter);
    if (archivedFilter !== "false") query.set("archived", archivedFilter);
    try {
      setRuns(await fetchProjectRuns(projectId, query));
      setError(null);
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }, [projectId, stateFilter, tagFilter, archivedFilter]);

  useEffect(() => {
    void load();
  }, [load]);

  // Follow queued and running runs until they finish.
  const anyActive = runs?.some((run) => run.state === "queued" || run.state === "running") ?? false;
  useEffect(() => {
    if (!anyActive) return;
    const timer = setInterval(() => void load(), POLL_MS);
    return () => clearInterval(timer);
  }, [anyActive, load]);

  const metricNames = useMemo(() => metricNamesOf(runs ?? []), [runs]);
  // A tag or note edited in the table replaces its run's row (PATCH answers with the record).
  const replaceRun = useCallback((saved: Run) => setRuns((current) => current && current.map((run) => (run.id === saved.id ? saved : run))), []);

  const columns: Column[] = useMemo(() => runColumns(metricNames).map((column): Column => {
    const metric = column.key.startsWith(METRIC_COLUMN_PREFIX) ? column.key.slice(METRIC_COLUMN_PREFIX.length) : null;
    const render = metric !== null ? (run: Run) => formatValue(run.final_metrics?.[metric])
      : column.key === "tags" ? (run: Run) => (
        <InlineAnnotation run={run} field="tags" onSaved={replaceRun}>
          {run.tags.map((tag) => (
            <button key={tag} type="button" className="tag link" onClick={() => setFilter("tag", tag)} title={`Only runs tagged ${tag}`}>{tag}</button>
          ))}
        </InlineAnnotation>
      )
      : column.key === "notes" ? (run: Run) => <InlineAnnotation run={run} field="notes" onSaved={replaceRun}>{RENDERS.notes?.(run)}</InlineAnnotation>
      : RENDERS[column.key];
    return render ? { ...column, render } : column;
  }), [metricNames, replaceRun]);

  const visible = useMemo(() => visibleRuns(runs ?? [], text, columns, sort), [runs, text, sort, columns]);

  const best = useMemo(() => {
    const bestByMetric = new Map<string, number>();
    for (const name of metricNames) {
      const values = visible.map((run) => run.final_metrics?.[name]).filter((value): value is number => typeof value === "number");
      if (values.length > 1) bestByMetric.set(name, higherIsBetter(name) ? Math.max(...values) : Math.min(...values));
    }
    return bestByMetric;
  }, [visible, metricNames]);

  const allTags = useMemo(() => [...new Set((runs ?? []).flatMap((run) => run.tags))].sort(), [runs]);
  const toggle = (id: number) => setSelected((current) => (current.includes(id) ? current.filter((other) => other !== id) : [...current, id]));
  const allVisibleSelected = visible.length > 0 && visible.every((run) => selected.includes(run.id));
  const selectedRuns = selected.map((id) => runs?.find((run) => run.id === id)).filter((run): run is Run => !!run);
  const comparedRuns = comparing.map((id) => runs?.find((run) => run.id === id)).filter((run): run is Run => !!run);

  return (
    <div className="runs-page">
      <header className="page-header">
        <h1>Runs{project ? ` of ${project.name}` : ""}</h1>
        <Link to={`/projects/${projectId}`}>← Back to the editor</Link>
        <Link to={`/projects/${projectId}/sweeps`} title="Sweeps: groups of runs over a search space">Sweeps</Link>
        <div className="spacer" />
        <button onClick={() => void load()}>Refresh</button>
      </header>
      <div className="runs-filters">
        <label>
          Search
          <input type="search" value={text} placeholder="name, notes, tag, dataset…" onChange={(event) => setFilter("q", event.target.value)} />
        </label>
        <label>
          State
          <select value={stateFilter} onChange={(event) => setFilter("state", event.target.value)}>
            <option value="">any</option>
            {RUN_STATES.map((state) => <option key={state} value={state}>{stateLabel(state)}</option>)}
          </select>
        </label>
        <label>
          Tag
          <select value={tagFilter} onChange={(event) => setFilter("tag", event.target.value)}>
            <option value="">any</option>
            {[...new Set([...allTags, ...(tagFilter ? [tagFilter] : [])])].map((tag) => <option key={tag} value={tag}>{tag}</option>)}
          </select>
        </label>
        <label>
          Archived
          <select value={archivedFilter} onChange={(event) => setFilter("archived", event.target.value === "false" ? "" : event.target.value)} data-testid="runs-archived-filter">
            <option value="false">hidden</option>
            <option value="true">only archived</option>
            <option value="all">shown too</option>
          </select>
        </label>
        <div className="spacer" />
        <span className="muted">{selected.length ? `${selected.length} selected` : "Tick runs to compare them"}</span>
        {selectedRuns.length > 0 && <RunsBulkActions runs={selectedRuns} onDone={() => { setSelected([]); void load(); }} />}
        <button className="primary" disabled={selected.length < 1} onClick={() => setComparing(selected)}>Compare</button>
      </div>
      {error && <div className="error-box" role="alert">{error}</div>}
      {runs === null && !error && <div className="loading">Loading runs…</div>}
      {runs !== null && (
        <div className="table-scroll">
          <table className="data runs-table">
            <thead>
              <tr>
                <th>
                  <input type="checkbox" aria-label="Select all shown runs" checked={allVisibleSelected}
                    onChange={() => setSelected(allVisibleSelected ? selected.filter((id) => !visible.some((run) => run.id === id)) : [...new Set([...selected, ...visible.map((run) => run.id)])])} />
                </th>
                {columns.map((column) => (
                  <th key={column.key} className={`sortable ${column.numeric ? "num" : ""}`}
                    aria-sort={sort.key === column.key ? (sort.descending ? "descending" : "ascending") : undefined}
                    onClick={() => setSort(nextSort(sort, column))}>
                    {column.label}
                    {sort.key === column.key && <span className="arrow">{sort.descending ? "▼" : "▲"}</span>}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {visible.map((run) => (
                <tr key={run.id} data-testid={`run-row-${run.id}`} className={selected.includes(run.id) ? "selected" : undefined}>
                  <td>
                    <input type="checkbox" data-testid={`run-select-${run.id}`} aria-label={`Select ${runTitle(run)}`}
                      checked={selected.includes(run.id)} onChange={() => toggle(run.id)} />
                  </td>
                  {columns.map((column) => {
                    const metric = column.key.startsWith("metric:") ? column.key.slice(7) : null;
                    const isBest = metric !== null && best.has(metric) && run.final_metrics?.[metric] === best.get(metric);
                    return (
                      <td key={column.key} className={[column.numeric ? "num" : "", ["notes", "tags", "created"].includes(column.key) ? column.key : "", isBest ? "best" : ""].join(" ").trim() || undefined}>
                        {column.render ? column.render(run) : formatCell(column.value(run))}
                      </td>
                    );
                  })}
                </tr>
              ))}
              {visible.length === 0 && (
                <tr><td colSpan={columns.length + 1} className="muted">
                  {runs.length ? "No run matches these filters." : <>No runs yet. <Link to={`/projects/${projectId}`}>Open the editor</Link> and press Train.</>}
                </td></tr>
              )}
            </tbody>
          </table>
        </div>
      )}
      {comparedRuns.length > 0 && <ComparePanel runs={comparedRuns} onClose={() => setComparing([])} />}
    </div>
  );
}
