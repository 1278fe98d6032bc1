// Where the drawn difference of two versions puts its removed nodes: where the older version had
// them, unless a node of the newer version now stands there; then moved down, clear of it, so
// that both read. Sizes are estimated from what the diff node shows (VersionDiffDialog.tsx), so
// the layout is known before anything is drawn.
import type { DiffNode } from "./diff";

export interface Size {
  width: number;
  height: number;
}

interface Box extends Size {
  x: number;
  y: number;
}

/** Space left between a moved node and the one it was moved clear of. */
export const NUDGE_GAP = 24;

// The diff node's CSS (editor.css, .nf-diff-node): at most 240 px wide, 12 px text.
const WIDTH = 240;
const HEADER = 28;
const LINE = 17;
const PADDING = 10;

/**
 * A generous estimate of a diff node's drawn size: its header, one line per port row, and one per
 * body line (label, input shape, key params, changes), long ones counted as wrapping once.
 */
export function estimateDiffNodeSize(node: DiffNode, keyParamCount: number): Size {
  const portRows = Math.max(node.inputs.length, node.outputs.length);
  const fields = node.data;
  const bodyLines = (typeof fields.label === "string" && fields.label ? 1 : 0)
    + (node.type === "input" ? 1 : 0)
    + keyParamCount
    + node.changes.length * 2;
  return { width: WIDTH, height: HEADER + portRows * LINE + PADDING + (bodyLines ? bodyLines * LINE + PADDING : 0) };
}

function overlaps(a: Box, b: Box): boolean {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

/**
 * The nodes with each removed node that overlaps a node of the newer version (or a removed node
 * already placed) moved straight down until it overlaps none, `NUDGE_GAP` below what it hit.
 * Other nodes keep their places; the order of the nodes is kept.
 */
export function nudgeRemovedNodes(nodes: DiffNode[], sizeOf: (node: DiffNode) => Size): DiffNode[] {
  const box = (node: DiffNode): Box => ({ ...node.position, ...sizeOf(node) });
  const placed: Box[] = nodes.filter((node) => node.status !== "removed").map(box);
  return nodes.map((node) => {
    if (node.status !== "removed") return node;
    const moving = box(node);
    for (let hit = placed.find((other) => overlaps(moving, other)); hit; hit = placed.find((other) => overlaps(moving, other))) {
      moving.y = hit.y + hit.height + NUDGE_GAP; // each step moves down past one box, so this ends
    }
    placed.push(moving);
    return moving.y === node.position.y ? node : { ...node, position: { x: node.position.x, y: moving.y } };
  });
}
