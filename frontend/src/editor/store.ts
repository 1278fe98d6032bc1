// The editor's one store, in the manner of xyflow's zustand example: the graph document on the
// canvas (React Flow's nodes and edges), its undo history, the saved versions, and named actions
// for every change; beside them what the node and edge components read (the catalog, the last
// validation report, the datasets, the version diff marks). Graph logic itself stays in ../graph.
import { applyEdgeChanges, applyNodeChanges, type Connection, type EdgeChange, type NodeChange } from "@xyflow/react";
import { create } from "zustand";
import type { Catalog, Dataset, EditorDocument, GraphFix, GraphVersion, GraphVersionSummary, OpSchema, ValidationReport } from "../api/types";
import { bindingFields, boundDatasetId } from "../graph/binding";
import { copySelection as copyNodes, pasteClip, type Clip } from "../graph/clipboard";
import { documentKey, emptyDocument, fromDocument, toDocument } from "../graph/document";
import { insertReshape } from "../graph/fixes";
import { History } from "../graph/history";
import { edgeId, nextId } from "../graph/ids";
import { buildElkGraph, positionsFromElk } from "../graph/layout";
import { checkConnection, nodePorts, type ConnectionCheck, type InferredTensor } from "../graph/ports";
import { EDGE_TYPE, NODE_TYPE, type GraphEdge, type GraphNode, type InputRole } from "../graph/types";
import { withWatched } from "../layerstats/watch";
import { createBuiltinDataset, updateDatasetView } from "./api";

export type DiffMark = "added" | "changed";
type Fields = GraphNode["data"]["fields"];
type Position = { x: number; y: number };

export interface EditorState {
  // -- what the canvas's components read --------------------------------------------------
  catalog: Catalog | null;
  ops: Map<string, OpSchema>;
  report: ValidationReport | null;
  /** The document key the report describes: connection checks trust its shapes only while the
   *  canvas is still that document. */
  reportKey: string | null;
  datasets: Dataset[];
  /** The dataset the train panel last chose for this graph (null: none chosen yet, so the one the
   *  inputs are bound to; see `selectTrainingDataset`). */
  trainingDataset: number | null;
  /** Counts changes of the datasets' views made here: validation against a dataset is redone. */
  datasetRevision: number;
  diffMarks: Record<string, DiffMark>;
  openBlock: ((op: OpSchema) => void) | null;

  // -- the graph document and its history -------------------------------------------------
  nodes: GraphNode[];
  edges: GraphEdge[];
  metadata: Record<string, unknown> | undefined;
  /** The canvas as a saved document; a new object only when the document changes (not on
   *  selection, measuring or viewport changes). */
  document: EditorDocument;
  /** `documentKey(document)`: what "unsaved changes", history and validation compare. */
  documentKey: string;
  canUndo: boolean;
  canRedo: boolean;

  // -- versions ---------------------------------------------------------------------------
  versions: GraphVersionSummary[];
  loadedVersion: GraphVersionSummary | null;
  /** The document key of the loaded or last saved version (an empty canvas before the first save). */
  savedKey: string;

  setCatalog(catalog: Catalog): void;
  setReport(report: ValidationReport | null, key?: string | null): void;
  setDatasets(datasets: Dataset[]): void;
  /** The dataset the graph will train on, as the train panel chose it (null: unknown or not added yet). */
  setTrainingDataset(datasetId: number | null): void;
  setDiffMarks(marks: Record<string, DiffMark>): void;
  setOpenBlock(open: ((op: OpSchema) => void) | null): void;

  /** A project opened: its latest version (or an empty canvas), no history, nothing unsaved. */
  openProject(versions: GraphVersionSummary[], latest: GraphVersion | null): void;
  onNodesChange(changes: NodeChange<GraphNode>[]): void;
  onEdgesChange(changes: EdgeChange<GraphEdge>[]): void;
  /** A new node of `kind` at `position`, selected alone. */
  addNode(kind: string, position: Position): string;
  /** Whether the canvas would take the edge (with the shapes of the last validation, when current). */
  checkConnection(connection: Connection | GraphEdge): ConnectionCheck;
  /** Add the edge if the ports take it; the refusal's reason otherwise. */
  connect(connection: Connection): ConnectionCheck;
  /** Replace a node's fields; changes with the same `key` in a short while are one undo step. */
  updateFields(nodeId: string, fields: Fields, key: string): void;
  /** Watch a node's output in a run's per-layer statistics, or not (the document's metadata). */
  setWatched(nodeId: string, watched: boolean): void;
  /** Bind an input node to a dataset ("<id>" or "builtin:<name>", added to the user's datasets
   *  first) as features or labels; "" unbinds. */
  bindDataset(nodeId: string, dataset: string, role: InputRole, projectId: number): Promise<void>;
  selectNode(nodeId: string): void;
  selectAll(): void;
  /** Copy the selected nodes and the edges among them; how many nodes were copied. */
  copySelection(): number;
  /** Paste the last copy, selected alone: its top-left corner at `at` (the pointer, in flow
   *  coordinates) when given, else to the right of the original, clear of it (a second paste
   *  lands to the right of the first). */
  paste(at?: { x: number; y: number }): void;
  /** Delete the selected nodes and edges, and the edges of the deleted nodes. */
  removeSelection(): void;
  /** Apply validation's fix of an error on `nodeId`: insert a reshape or set a parameter (one undo
   *  step each), or change the dataset's view (through the API; validation is then redone). */
  applyFix(nodeId: string, fix: GraphFix): Promise<void>;
  /** Lay the graph out with ELK (layered, top to bottom), as one undo step. */
  autoLayout(): Promise<void>;
  undo(): void;
  redo(): void;
  /** Put a document on the canvas (a template, an imported file) as one undo step. */
  loadDocument(document: EditorDocument): void;
  /** Put a saved version on the canvas (undoable) and count it as saved. */
  loadVersion(version: GraphVersion): void;
  /** The canvas was saved as `version` with `document`'s content. */
  versionSaved(version: GraphVersion, document: EditorDocument): void;
}

type Set = (partial: Partial<EditorState>) => void;
type Get = () => EditorState;

/** The store's state and actions; `create(editorState)` makes a store (tests make their own). */
export function editorState(set: Set, get: Get): EditorState {
  const start = emptyDocument();
  const startKey = documentKey(start);
  let history = new History<EditorDocument>(start);
  let clip: Clip | null = null;

  /** Draw a new canvas; a canvas that differs as a document becomes a step of the history. */
  function commit(next: { nodes?: GraphNode[]; edges?: GraphEdge[]; metadata?: Record<string, unknown> | undefined }, changeKey: string | null = null, record = true) {
    const state = get();
    const nodes = next.nodes ?? state.nodes;
    const edges = next.edges ?? state.edges;
    const metadata = "metadata" in next ? next.metadata : state.metadata;
    const document = toDocument({ nodes, edges }, metadata);
    const key = documentKey(document);
    if (key === state.documentKey) {
      set({ nodes, edges, metadata, canUndo: history.canUndo, canRedo: history.canRedo });
      return;
    }
    if (record) history.push(document, changeKey);
    set({ nodes, edges, metadata, document, documentKey: key, canUndo: history.canUndo, canRedo: history.canRedo });
  }

  /** Show a step of the history (already recorded) or a document to record. The metadata too: a
   *  step is the whole document, and undoing a template's load must not keep the template's
   *  metadata (the canvas would then differ from the step, count as a new change and drop the redo). */
  function show(document: EditorDocument, record: boolean) {
    const graph = fromDocument(document);
    commit({ nodes: graph.nodes, edges: graph.edges, metadata: document.metadata }, null, record);
  }

  function inferredSource(connection: Connection | GraphEdge): InferredTensor | null {
    const { report, reportKey, documentKey: key } = get();
    if (!report || reportKey !== key) return null;
    return report.nodes[connection.source]?.outputs[connection.sourceHandle ?? ""] ?? null;
  }

  function lookup(name: string): OpSchema | undefined {
    return get().ops.get(name);
  }

  return {
    catalog: null,
    ops: new Map(),
    report: null,
    reportKey: null,
    datasets: [],
    trainingDataset: null,
    datasetRevision: 0,
    diffMarks: {},
    openBlock: null,
    nodes: [],
    edges: [],
    metadata: undefined,
    document: start,
    documentKey: startKey,
    canUndo: false,
    canRedo: false,
    versions: [],
    loadedVersion: null,
    savedKey: startKey,

    setCatalog: (catalog) => set({ catalog, ops: new Map(catalog.ops.map((op) => [op.name, op])) }),
    setReport: (report, key = null) => set({ report, reportKey: report ? key : null }),
    setDatasets: (datasets) => set({ datasets }),
    setTrainingDataset: (trainingDataset) => set({ trainingDataset }),
    setDiffMarks: (diffMarks) => set({ diffMarks }),
    setOpenBlock: (openBlock) => set({ openBlock }),

    openProject(versions, latest) {
      const graph = fromDocument(latest?.editor_document ?? emptyDocument());
      const metadata = latest?.editor_document.metadata;
      // The document as the canvas writes it back (rounded positions, normalized edges), so a
      // freshly loaded version does not count as changed.
      const document = toDocument(graph, metadata);
      const key = documentKey(document);
      history = new History(document);
      clip = null;
      set({
        nodes: graph.nodes, edges: graph.edges, metadata, document, documentKey: key, canUndo: false, canRedo: false,
        versions, loadedVersion: latest, savedKey: key, report: null, reportKey: null, diffMarks: {}, trainingDataset: null,
      });
    },

    onNodesChange(changes) {
      const moved = changes.filter((change) => change.type === "position").map((change) => change.id);
      commit({ nodes: applyNodeChanges(changes, get().nodes) }, moved.length ? `move:${moved.sort().join(",")}` : null);
    },

    onEdgesChange(changes) {
      commit({ edges: applyEdgeChanges(changes, get().edges) });
    },

    addNode(kind, position) {
      const { nodes } = get();
      const id = nextId(kind, nodes.map((node) => node.id));
      const fields = kind === "input" ? { dtype: "float32" } : kind === "output" || kind === "loss" ? {} : { params: {} };
      const node: GraphNode = { id, type: NODE_TYPE, position: { x: Math.round(position.x), y: Math.round(position.y) }, data: { kind, fields }, selected: true };
      commit({ nodes: [...nodes.map((other) => (other.selected ? { ...other, selected: false } : other)), node] });
      return id;
    },

    checkConnection(connection) {
      const { nodes, edges } = get();
      return checkConnection({ nodes, edges }, connection, lookup, inferredSource(connection));
    },

    connect(connection) {
      const check = get().checkConnection(connection);
      if (!check.ok) return check;
      const { edges } = get();
      commit({ edges: [...edges, {
        id: edgeId(connection, edges.map((edge) => edge.id)),
        type: EDGE_TYPE, source: connection.source, target: connection.target,
        sourceHandle: connection.sourceHandle ?? null, targetHandle: connection.targetHandle ?? null, data: {},
      }] });
      return check;
    },

    setWatched(nodeId, watched) {
      const { nodes, metadata } = get();
      commit({ metadata: withWatched(metadata, nodes.map((node) => node.id), nodeId, watched) }, `${nodeId}:watch`);
    },

    updateFields(nodeId, fields, key) {
      commit({ nodes: get().nodes.map((node) => (node.id === nodeId ? { ...node, data: { ...node.data, fields } } : node)) }, key);
    },

    async bindDataset(nodeId, value, role, projectId) {
      const node = get().nodes.find((candidate) => candidate.id === nodeId);
      if (!node) return;
      let dataset: Dataset | null = null;
      if (value) {
        dataset = get().datasets.find((candidate) => String(candidate.id) === value) ?? null;
        if (!dataset && value.startsWith("builtin:")) {
          dataset = await createBuiltinDataset(value.slice("builtin:".length), projectId);
          set({ datasets: [...get().datasets, dataset] });
        }
        if (!dataset) throw new Error(`unknown dataset ${value}`);
      }
      // The node as it is now: the fields may have changed while a built-in was being added.
      const current = get().nodes.find((candidate) => candidate.id === nodeId) ?? node;
      get().updateFields(nodeId, bindingFields(current.data.fields, dataset, role), `${nodeId}:dataset`);
    },

    selectNode(nodeId) {
      const { nodes, edges } = get();
      commit({
        nodes: nodes.map((node) => ({ ...node, selected: node.id === nodeId })),
        edges: edges.map((edge) => (edge.selected ? { ...edge, selected: false } : edge)),
      });
    },

    selectAll() {
      const { nodes, edges } = get();
      commit({ nodes: nodes.map((node) => ({ ...node, selected: true })), edges: edges.map((edge) => ({ ...edge, selected: true })) });
    },

    copySelection() {
      const { nodes, edges } = get();
      const selected = nodes.filter((node) => node.selected).map((node) => node.id);
      if (selected.length) clip = copyNodes(toDocument({ nodes, edges }), selected);
      return selected.length;
    },

    paste(at) {
      if (!clip) return;
      const { nodes, edges } = get();
      const pasted = pasteClip(clip, { nodes: nodes.map((node) => node.id), edges: edges.map((edge) => edge.id) },
        pasteOffset(clip, nodes, at));
      clip = { nodes: pasted.nodes, edges: pasted.edges };
      const graph = fromDocument({ ...emptyDocument(), ...pasted });
      commit({
        nodes: [...nodes.map((node) => ({ ...node, selected: false })), ...graph.nodes.map((node) => ({ ...node, selected: true }))],
        edges: [...edges, ...graph.edges],
      });
    },

    removeSelection() {
      const { nodes, edges } = get();
      const removed = new Set(nodes.filter((node) => node.selected).map((node) => node.id));
      commit({
        nodes: nodes.filter((node) => !removed.has(node.id)),
        edges: edges.filter((edge) => !edge.selected && !removed.has(edge.source) && !removed.has(edge.target)),
      });
    },

    async applyFix(nodeId, fix) {
      if (fix.kind === "insert_reshape") {
        const { nodes, edges } = get();
        const inserted = insertReshape({ nodes, edges }, nodeId, fix.shape, fix.input_shape);
        if (inserted) commit(inserted.graph);
      } else if (fix.kind === "set_param") {
        const node = get().nodes.find((candidate) => candidate.id === nodeId);
        if (!node) return;
        const params = { ...((node.data.fields.params as Record<string, unknown> | undefined) ?? {}), [fix.param]: fix.value };
        commit({ nodes: get().nodes.map((other) => (other.id === nodeId ? { ...other, data: { ...other.data, fields: { ...other.data.fields, params } } } : other)) });
      } else {
        const updated = await updateDatasetView(fix.dataset, fix.view);
        const { datasets, datasetRevision } = get();
        set({
          datasets: datasets.some((dataset) => dataset.id === updated.id) ? datasets.map((dataset) => (dataset.id === updated.id ? updated : dataset)) : [...datasets, updated],
          datasetRevision: datasetRevision + 1,
        });
      }
    },

    async autoLayout() {
      const { default: ELK } = await import("elkjs/lib/elk.bundled.js");
      const { nodes, edges } = get();
      const sizes = Object.fromEntries(nodes.map((node) => [node.id,
        node.measured?.width && node.measured.height ? { width: node.measured.width, height: node.measured.height } : undefined]));
      const portOrder = (nodeId: string) => {
        const node = nodes.find((candidate) => candidate.id === nodeId)!;
        const ports = nodePorts(node.data.kind, node.data.fields, lookup);
        return { inputs: ports.inputs.map((port) => port.name), outputs: ports.outputs.map((port) => port.name) };
      };
      const positions = positionsFromElk(await new ELK().layout(buildElkGraph({ nodes, edges }, portOrder, sizes)));
      // Onto the canvas as it is now (ELK ran asynchronously).
      commit({ nodes: get().nodes.map((node) => (positions[node.id] ? { ...node, position: positions[node.id] } : node)) });
    },

    undo() {
      const previous = history.undo();
      if (previous) show(previous, false);
    },

    redo() {
      const next = history.redo();
      if (next) show(next, false);
    },

    loadDocument(document) {
      show(document, true);
    },

    loadVersion(version) {
      show(version.editor_document, true);
      set({ loadedVersion: version, savedKey: get().documentKey });
    },

    versionSaved(version, document) {
      set({
        loadedVersion: version,
        savedKey: documentKey(document),
        versions: [version, ...get().versions.filter((item) => item.id !== version.id)],
      });
    },
  };
}

export const useEditorStore = create<EditorState>()(editorState);

/** The dataset the graph will train on: the train panel's choice, else the one its inputs are bound to. */
export const selectTrainingDataset = (state: EditorState): number | null => state.trainingDataset ?? boundDatasetId(state.nodes);

/** Whether the canvas differs from the loaded or last saved version. */
export const selectDirty = (state: EditorState) => state.documentKey !== state.savedKey;

const PASTE_GAP = 60; // flow units between the originals and a copy pasted beside them
// A node not drawn yet (tests, a node off-screen): about its CSS size.
const UNMEASURED_NODE = { width: 220, height: 80 };

interface Box { left: number; top: number; right: number; bottom: number }

/** How far a paste moves the clip: onto the pointer, or beside the originals on free canvas (right
 *  of the clip, else below it, further out until nothing is covered), so the copy never lands on
 *  the originals or their neighbours (a fixed 40 px was ~15 px on screen when zoomed out). */
function pasteOffset(clip: Clip, nodes: GraphNode[], at?: { x: number; y: number }): { x: number; y: number } {
  if (!clip.nodes.length) return { x: 0, y: 0 };
  const boxOf = (node: { id: string; position: { x: number; y: number } }): Box => {
    const drawn = nodes.find((candidate) => candidate.id === node.id);
    const width = drawn?.measured?.width ?? drawn?.width ?? UNMEASURED_NODE.width;
    const height = drawn?.measured?.height ?? drawn?.height ?? UNMEASURED_NODE.height;
    return { left: node.position.x, top: node.position.y, right: node.position.x + width, bottom: node.position.y + height };
  };
  const clipBoxes = clip.nodes.map(boxOf);
  const bounds: Box = {
    left: Math.min(...clipBoxes.map((box) => box.left)), top: Math.min(...clipBoxes.map((box) => box.top)),
    right: Math.max(...clipBoxes.map((box) => box.right)), bottom: Math.max(...clipBoxes.map((box) => box.bottom)),
  };
  if (at) return { x: at.x - bounds.left, y: at.y - bounds.top };
  const others = nodes.map(boxOf);
  const covers = (dx: number, dy: number) => clipBoxes.some((box) => others.some((other) =>
    box.left + dx < other.right + PASTE_GAP / 2 && other.left < box.right + dx + PASTE_GAP / 2 &&
    box.top + dy < other.bottom + PASTE_GAP / 2 && other.top < box.bottom + dy + PASTE_GAP / 2));
  const stepX = bounds.right - bounds.left + PASTE_GAP;
  const stepY = bounds.bottom - bounds.top + PASTE_GAP;
  for (let ring = 1; ring <= 20; ring++) {
    if (!covers(ring * stepX, 0)) return { x: ring * stepX, y: 0 };
    if (!covers(0, ring * stepY)) return { x: 0, y: ring * stepY };
  }
  return { x: stepX, y: 0 };
}
