import { describe, expect, it } from "vitest";
import { createStore } from "zustand/vanilla";
import type { Catalog, GraphVersion, ValidationReport } from "../api/types";
import { documentKey } from "../graph/document";
import { mlpDocument, TEST_OPS } from "../graph/testing";
import { editorState, selectDirty, selectTrainingDataset } from "./store";

const catalog: Catalog = {
  format: "netforge.catalog/1", engine_version: "test", categories: ["layers"], ops: TEST_OPS,
  editor_format: "netforge.editor/1", special_nodes: [], templates: [],
};

function version(number: number, document = mlpDocument()): GraphVersion {
  return {
    id: number * 10, number, name: "main", message: "", created_by: "demo", created_at: "2026-01-01T00:00:00Z", summary: {},
    project: 1, editor_document: document, spec: null, draft: false,
  };
}

/** A store with the test catalog and a project opened on `latest` (an empty canvas without). */
function openedStore(latest: GraphVersion | null = version(1)) {
  const store = createStore(editorState);
  store.getState().setCatalog(catalog);
  store.getState().openProject(latest ? [latest] : [], latest);
  return store;
}

const ids = (store: ReturnType<typeof openedStore>) => store.getState().nodes.map((node) => node.id);

describe("the editor store", () => {
  it("opens a project's latest version with nothing to undo and nothing unsaved", () => {
    const store = openedStore();
    const state = store.getState();
    expect(ids(store)).toEqual(["x", "y", "dense_1", "loss_1", "output_1"]);
    expect(state.edges).toHaveLength(4);
    expect(state.canUndo).toBe(false);
    expect(selectDirty(state)).toBe(false);
    expect(state.loadedVersion?.number).toBe(1);
  });

  it("adds a node selected alone, as one undo step, and undoes and redoes it", () => {
    const store = openedStore();
    store.getState().selectNode("x");
    const added = store.getState().addNode("relu", { x: 10.4, y: 20.6 });
    expect(added).toBe("relu_1");
    const node = store.getState().nodes.find((candidate) => candidate.id === added)!;
    expect(node.position).toEqual({ x: 10, y: 21 });
    expect(store.getState().nodes.filter((candidate) => candidate.selected).map((candidate) => candidate.id)).toEqual([added]);
    expect(selectDirty(store.getState())).toBe(true);

    store.getState().undo();
    expect(ids(store)).not.toContain(added);
    expect(selectDirty(store.getState())).toBe(false);
    expect(store.getState().canRedo).toBe(true);
    store.getState().redo();
    expect(ids(store)).toContain(added);
    expect(store.getState().canRedo).toBe(false);
  });

  it("watches a node's output or not in the document's metadata, as an undoable change", () => {
    const store = openedStore();
    store.getState().setWatched("dense_1", false);
    expect(store.getState().document.metadata).toEqual({ layer_stats: { nodes: ["x", "y", "loss_1", "output_1"] } });
    expect(selectDirty(store.getState())).toBe(true);
    store.getState().undo();
    expect(store.getState().document.metadata).toBeUndefined();
    expect(selectDirty(store.getState())).toBe(false);
  });

  it("does not count a selection as a change", () => {
    const store = openedStore();
    store.getState().selectAll();
    expect(store.getState().nodes.every((node) => node.selected)).toBe(true);
    expect(store.getState().canUndo).toBe(false);
    expect(selectDirty(store.getState())).toBe(false);
  });

  it("connects ports that fit and refuses the others with the reason", () => {
    const store = openedStore(null);
    const { addNode } = store.getState();
    const input = addNode("input", { x: 0, y: 0 });
    const dense = addNode("dense", { x: 200, y: 0 });
    const relu = addNode("relu", { x: 400, y: 0 });
    expect(store.getState().connect({ source: input, sourceHandle: "out", target: dense, targetHandle: "x" })).toEqual({ ok: true });
    expect(store.getState().connect({ source: dense, sourceHandle: "out", target: relu, targetHandle: "x" })).toEqual({ ok: true });
    expect(store.getState().edges.map((edge) => edge.id)).toEqual(["input_1.out->dense_1.x", "dense_1.out->relu_1.x"]);
    const taken = store.getState().connect({ source: relu, sourceHandle: "out", target: dense, targetHandle: "x" });
    expect(taken).toEqual({ ok: false, reason: "port 'x' of 'dense_1' already has an input from 'input_1'; delete that edge first" });
    expect(store.getState().edges).toHaveLength(2);
  });

  it("trusts the report's shapes only while it describes the canvas", () => {
    const store = openedStore(null);
    const { addNode } = store.getState();
    const input = addNode("input", { x: 0, y: 0 });
    const conv = addNode("conv2d", { x: 200, y: 0 });
    const report = { nodes: { [input]: { outputs: { out: { shape: [null, 64], dtype: "float32" } } } } } as unknown as ValidationReport;
    store.getState().setReport(report, store.getState().documentKey);
    const connection = { source: input, sourceHandle: "out", target: conv, targetHandle: "x" };
    expect(store.getState().checkConnection(connection)).toMatchObject({ ok: false, reason: expect.stringContaining("(2-D)") });
    store.getState().updateFields(input, { dtype: "float32", shape: [1, 8, 8] }, `${input}:shape`);
    expect(store.getState().checkConnection(connection)).toEqual({ ok: true });
  });

  it("makes one undo step of keystrokes into one field", () => {
    const store = openedStore();
    const { updateFields } = store.getState();
    updateFields("dense_1", { params: { units: 1 } }, "dense_1:param:units");
    updateFields("dense_1", { params: { units: 12 } }, "dense_1:param:units");
    updateFields("dense_1", { params: { units: 128 } }, "dense_1:param:units");
    store.getState().undo();
    expect(store.getState().nodes.find((node) => node.id === "dense_1")!.data.fields).toEqual({ params: { units: 10 }, label: "logits" });
    expect(store.getState().canUndo).toBe(false);
  });

  it("pastes a copy with fresh ids clear of the original, and a second paste clear of the first", () => {
    const store = openedStore();
    store.getState().selectNode("dense_1");
    expect(store.getState().copySelection()).toBe(1);
    store.getState().paste();
    store.getState().paste();
    const nodes = store.getState().nodes;
    expect(nodes.filter((node) => node.selected).map((node) => node.id)).toEqual(["dense_3"]);
    // Not drawn, each node counts as 220 × 80: no copy's box meets another node's.
    for (const copy of ["dense_2", "dense_3"]) {
      const { x, y } = nodes.find((node) => node.id === copy)!.position;
      for (const other of nodes.filter((node) => node.id !== copy)) {
        const apart = x + 220 <= other.position.x || other.position.x + 220 <= x || y + 80 <= other.position.y || other.position.y + 80 <= y;
        expect(apart, `${copy} at ${x},${y} covers ${other.id} at ${other.position.x},${other.position.y}`).toBe(true);
      }
    }
    // the first copy to the right of the original (240, 0) or below it
    const first = nodes.find((node) => node.id === "dense_2")!.position;
    expect(first.x === 240 || first.y === 0).toBe(true);
  });

  it("pastes at the pointer when given one", () => {
    const store = openedStore();
    store.getState().selectNode("dense_1");
    store.getState().copySelection();
    store.getState().paste({ x: 1000, y: -300 });
    expect(store.getState().nodes.find((node) => node.id === "dense_2")!.position).toEqual({ x: 1000, y: -300 });
  });

  it("removes the selection and the edges of the removed nodes", () => {
    const store = openedStore();
    store.getState().selectNode("dense_1");
    store.getState().removeSelection();
    expect(ids(store)).toEqual(["x", "y", "loss_1", "output_1"]);
    expect(store.getState().edges.map((edge) => edge.id)).toEqual(["e3"]);
    store.getState().undo();
    expect(store.getState().edges).toHaveLength(4);
  });

  it("lays the graph out top to bottom as one undo step", async () => {
    const store = openedStore();
    await store.getState().autoLayout();
    const position = (id: string) => store.getState().nodes.find((node) => node.id === id)!.position;
    expect(position("x").y).toBeLessThan(position("dense_1").y);
    expect(position("dense_1").y).toBeLessThan(position("loss_1").y);
    store.getState().undo();
    expect(position("dense_1").x).toBe(240);
  });

  it("loads a template as an undoable step, metadata included", () => {
    const store = openedStore(null);
    store.getState().loadDocument({ ...mlpDocument(), metadata: { template: "mlp" } });
    expect(store.getState().document.metadata).toEqual({ template: "mlp" });
    store.getState().undo();
    expect(store.getState().nodes).toEqual([]);
    expect(store.getState().document.metadata).toBeUndefined();
    store.getState().redo();
    expect(store.getState().document.metadata).toEqual({ template: "mlp" });
  });

  it("loads a version as saved, and a save marks the canvas saved", () => {
    const store = openedStore(null);
    store.getState().loadVersion(version(2));
    expect(store.getState().loadedVersion?.number).toBe(2);
    expect(selectDirty(store.getState())).toBe(false);
    store.getState().addNode("relu", { x: 0, y: 0 });
    expect(selectDirty(store.getState())).toBe(true);
    const { document } = store.getState();
    store.getState().versionSaved(version(3, document), document);
    expect(selectDirty(store.getState())).toBe(false);
    expect(store.getState().versions.map((item) => item.number)).toEqual([3]);
    expect(store.getState().savedKey).toBe(documentKey(document));
  });

  it("coalesces one node's drag into one step", () => {
    const store = openedStore();
    for (const x of [5, 10, 15]) {
      store.getState().onNodesChange([{ type: "position", id: "x", position: { x, y: 0 }, dragging: true }]);
    }
    expect(store.getState().nodes[0].position).toEqual({ x: 15, y: 0 });
    store.getState().undo();
    expect(store.getState().nodes[0].position).toEqual({ x: 0, y: 0 });
  });

  it("applies the insert-reshape fix as one undo step", async () => {
    const store = openedStore();
    await store.getState().applyFix("x", { kind: "insert_reshape", shape: [1, 8, 8], input_shape: [64] });
    expect(ids(store)).toContain("reshape_1");
    expect(store.getState().edges.filter((edge) => edge.source === "reshape_1").map((edge) => edge.target)).toEqual(["dense_1"]);
    expect(store.getState().canUndo).toBe(true);
    store.getState().undo();
    expect(ids(store)).not.toContain("reshape_1");
    expect(store.getState().edges.find((edge) => edge.target === "dense_1")!.source).toBe("x");
    expect(selectDirty(store.getState())).toBe(false);
    store.getState().redo();
    expect(ids(store)).toContain("reshape_1");
  });

  it("applies the set-parameter fix to the node's params, keeping the others", async () => {
    const store = openedStore();
    await store.getState().applyFix("dense_1", { kind: "set_param", param: "units", value: 4 });
    expect(store.getState().nodes.find((node) => node.id === "dense_1")!.data.fields).toEqual({ params: { units: 4 }, label: "logits" });
    store.getState().undo();
    expect(store.getState().nodes.find((node) => node.id === "dense_1")!.data.fields.params).toEqual({ units: 10 });
  });

  it("trains on the train panel's choice, else on the dataset the inputs are bound to", () => {
    const document = mlpDocument();
    document.nodes[0].data = { ...document.nodes[0].data, dataset: 7, role: "features" };
    const store = openedStore(version(1, document));
    expect(selectTrainingDataset(store.getState())).toBe(7);
    store.getState().setTrainingDataset(9);
    expect(selectTrainingDataset(store.getState())).toBe(9);
    store.getState().openProject([], null); // another project: no choice made for it yet
    expect(selectTrainingDataset(store.getState())).toBeNull();
  });
});
