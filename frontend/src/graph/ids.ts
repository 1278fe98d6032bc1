// Node and edge ids: generated, stable, never derived from labels or names (renaming a node must
// not break edges, runs or diffs). An op node's id also becomes its engine node id, so it keeps to
// the engine's pattern: a letter or _ first, then letters, digits, _ . - /.

/** The prefix for new nodes of a kind: the op name made id-safe. */
export function idPrefix(kind: string): string {
  const cleaned = kind.replace(/[^A-Za-z0-9_]/g, "_");
  return /^[A-Za-z_]/.test(cleaned) ? cleaned : `n_${cleaned}`;
}

/** `<prefix>_<n>` with the smallest n above every number already used with that prefix. */
export function nextId(kind: string, taken: Iterable<string>): string {
  const prefix = idPrefix(kind);
  const pattern = new RegExp(`^${prefix}_(\\d+)$`);
  let highest = 0;
  const used = new Set<string>();
  for (const id of taken) {
    used.add(id);
    const match = pattern.exec(id);
    if (match) highest = Math.max(highest, Number(match[1]));
  }
  let candidate = `${prefix}_${highest + 1}`;
  for (let n = highest + 2; used.has(candidate); n++) candidate = `${prefix}_${n}`;
  return candidate;
}

/** An edge id that says what it connects, unique among `taken`. */
export function edgeId(
  edge: { source: string; sourceHandle?: string | null; target: string; targetHandle?: string | null },
  taken: Iterable<string>,
): string {
  const base = `${edge.source}.${edge.sourceHandle ?? "out"}->${edge.target}.${edge.targetHandle ?? "in"}`;
  const used = new Set(taken);
  if (!used.has(base)) return base;
  let n = 2;
  while (used.has(`${base}#${n}`)) n++;
  return `${base}#${n}`;
}
