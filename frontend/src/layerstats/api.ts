// The Layers view's calls to the REST API.
import { api } from "../api/client";
import type { GraphVersion } from "../api/types";
import type { LayerStatsHistory, NodeSample } from "./stats";

/** Every node's statistics (no histograms) over at most `maxSamples` samples spread over the run. */
export function fetchLayerStats(runId: number, maxSamples = 200): Promise<LayerStatsHistory> {
  return api<LayerStatsHistory>(`/api/runs/${runId}/layer-stats?max_samples=${maxSamples}`);
}

/** One node's samples with their histograms. */
export async function fetchNodeSamples(runId: number, node: string): Promise<{ edges: number[]; samples: NodeSample[] }> {
  const body = await api<{ histogram_edges: number[]; samples: NodeSample[] }>(
    `/api/runs/${runId}/layer-stats?node=${encodeURIComponent(node)}&max_samples=400`);
  return { edges: body.histogram_edges, samples: body.samples };
}

export function fetchRunGraph(projectId: number, versionId: number): Promise<GraphVersion> {
  return api<GraphVersion>(`/api/projects/${projectId}/versions/${versionId}`);
}
