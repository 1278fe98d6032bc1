/** Which nodes' outputs a run's per-layer statistics watch: the graph document's
 *  `metadata.layer_stats.nodes` (node ids), or, with no list, every node's output (the default).
 *  The worker reads the same key (workers/training.py, `marked_activations`). */

type Metadata = Record<string, unknown> | undefined;

/** The watched node ids, or null for "every node's output". */
export function watchedOutputs(metadata: Metadata): string[] | null {
  const options = metadata?.layer_stats;
  if (!options || typeof options !== "object") return null;
  const nodes = (options as Record<string, unknown>).nodes;
  return Array.isArray(nodes) ? nodes.filter((id): id is string => typeof id === "string") : null;
}

export function isWatched(metadata: Metadata, nodeId: string): boolean {
  const watched = watchedOutputs(metadata);
  return watched === null || watched.includes(nodeId);
}

/** The metadata with `nodeId`'s output watched or not. Unwatching one node of the default makes the
 *  list explicit (every other node of `allNodeIds`); a list that comes to name every node goes back
 *  to the default, so nodes added later are watched too. */
export function withWatched(metadata: Metadata, allNodeIds: string[], nodeId: string, watched: boolean): Metadata {
  const current = watchedOutputs(metadata) ?? allNodeIds;
  const next = watched ? [...new Set([...current, nodeId])] : current.filter((id) => id !== nodeId);
  const options = { ...((metadata?.layer_stats as Record<string, unknown> | undefined) ?? {}) };
  if (allNodeIds.every((id) => next.includes(id))) delete options.nodes;
  else options.nodes = allNodeIds.filter((id) => next.includes(id));
  const result: Record<string, unknown> = { ...(metadata ?? {}) };
  if (Object.keys(options).length > 0) result.layer_stats = options;
  else delete result.layer_stats;
  return Object.keys(result).length > 0 ? result : undefined;
}
