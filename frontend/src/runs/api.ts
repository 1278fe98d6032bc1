// The run pages' calls to the REST API (the train panel has its own).
import { api, apiAll } from "../api/client";
import type { Project, Run, RunEvaluation, SeriesHistory } from "../api/types";

export function fetchRun(runId: number): Promise<Run> {
  return api<Run>(`/api/runs/${runId}`);
}

/** Ask for a run to be cancelled, or a stopped run to continue from its newest checkpoint; the run as it now is. */
export function runAction(runId: number, action: "cancel" | "resume"): Promise<Run> {
  return api<Run>(`/api/runs/${runId}/${action}`, { method: "POST" });
}

export function fetchRunEvaluation(runId: number): Promise<RunEvaluation> {
  return api<RunEvaluation>(`/api/runs/${runId}/evaluation`);
}

export function fetchProject(projectId: number): Promise<Project> {
  return api<Project>(`/api/projects/${projectId}`);
}

/** A project's runs; `query` filters them (state, tag, search, ordering). */
export function fetchProjectRuns(projectId: number, query: URLSearchParams): Promise<Run[]> {
  return apiAll<Run>(`/api/projects/${projectId}/runs${query.size ? `?${query}` : ""}`);
}

/** A run's recorded metric series, each downsampled to at most `maxPoints` (keeping minima and maxima). */
export async function fetchRunSeries(runId: number, maxPoints: number): Promise<Record<string, SeriesHistory>> {
  return (await api<{ series: Record<string, SeriesHistory> }>(`/api/runs/${runId}/metrics?max_points=${maxPoints}`)).series;
}
