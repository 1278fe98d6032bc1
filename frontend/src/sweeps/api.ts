// The sweep pages' and the train panel's calls to the sweeps' REST API.
import { api, apiAll } from "../api/client";
import type { Sweep, SweepCreateRequest, SweepDetail } from "../api/types";

export function fetchSweep(sweepId: number): Promise<SweepDetail> {
  return api<SweepDetail>(`/api/sweeps/${sweepId}`);
}

export function fetchProjectSweeps(projectId: number): Promise<Sweep[]> {
  return apiAll<Sweep>(`/api/projects/${projectId}/sweeps`);
}

/** Start a sweep: it is saved and its first trials are queued as runs. */
export function createSweep(projectId: number, request: SweepCreateRequest): Promise<SweepDetail> {
  return api<SweepDetail>(`/api/projects/${projectId}/sweeps`, { method: "POST", json: request });
}

/** No new trials; queued trials are cancelled, running ones stop after their batch. */
export function cancelSweep(sweepId: number): Promise<SweepDetail> {
  return api<SweepDetail>(`/api/sweeps/${sweepId}/cancel`, { method: "POST" });
}
