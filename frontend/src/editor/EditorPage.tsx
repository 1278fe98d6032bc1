// The graph editor of one project: palette, canvas, inspector, live validation, versions, training.
import {
  Background, Controls, MiniMap, ReactFlow, ReactFlowProvider, applyEdgeChanges, applyNodeChanges, useReactFlow,
  type Connection, type EdgeChange, type FitViewOptions, type NodeChange, type OnConnectEnd,
} from "@xyflow/react";
import { useCallback, useEffect, useMemo, useRef, useState, type DragEvent } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { ApiError, errorMessage } from "../api/client";
import type { Catalog, EditorDocument, GraphErrorItem, GraphVersion, GraphVersionSummary, OpSchema, Project, Template } from "../api/types";
import { TrainPanel } from "../runs/TrainPanel";
import { copySelection, pasteClip, type Clip } from "../graph/clipboard";
import { documentKey, emptyDocument, fromDocument, parseEditorDocument, toDocument } from "../graph/document";
import { History } from "../graph/history";
import { edgeId, nextId } from "../graph/ids";
import { buildElkGraph, positionsFromElk } from "../graph/layout";
import { checkConnection, nodePorts, type InferredTensor } from "../graph/ports";
import { EDGE_TYPE, NODE_TYPE, ROLE_INPUT_NAME, type GraphEdge, type GraphNode, type InputRole } from "../graph/types";
import {
  createBuiltinDataset, fetchBuiltinDatasets, fetchCatalog, fetchDatasets, fetchProject, fetchVersion, fetchVersions,
  saveVersion, scriptUrl, validateDocument, type BuiltinDataset,
} from "./api";
import { BlockDialog, Modal, SaveDialog } from "./dialogs";
import { Inspector } from "./Inspector";
import { NetNode } from "./NetNode";
import { DRAG_MIME, Palette } from "./Palette";
import { ShapeEdge } from "./ShapeEdge";
import { useEditorStore } from "./store";
import { SummaryBar } from "./SummaryBar";
import { VersionsPanel } from "./VersionsPanel";
import "./editor.css";

const nodeTypes = { [NODE_TYPE]: NetNode };
const edgeTypes = { [EDGE_TYPE]: ShapeEdge };
const VALIDATE_DELAY_MS = 300;
// Room around the fitted graph, in screen pixels, so that no node touches the palette or the
// inspector beside the canvas (a fraction of the canvas would leave a small graph none).
const FIT_VIEW: FitViewOptions<GraphNode> = { padding: { x: "56px", y: "40px" }, maxZoom: 1.2 };

interface Loaded {
  catalog: Catalog;
  project: Project;
  versions: GraphVersionSummary[];
  latest: GraphVersion | null;
}

export function EditorPage() {
  const { projectId } = useParams();
  const id = Number(projectId);
  const [loaded, setLoaded] = useState<Loaded | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    // The editor fills the page: the layout's main loses its padding while the editor is open.
    const main = document.querySelector("main.content");
    main?.classList.add("full-bleed");
    return () => main?.classList.remove("full-bleed");
  }, []);

  useEffect(() => {
    let cancelled = false;
    (async () => {
      const [catalog, project, versions] = await Promise.all([fetchCatalog(), fetchProject(id), fetchVersions(id)]);
      const latest = versions[0] ? await fetchVersion(id, versions[0].id) : null;
      if (!cancelled) setLoaded({ catalog, project, versions, latest });
    })().catch((caught) => !cancelled && setError(errorMessage(caught)));
    return () => {
      cancelled = true;
    };
  }, [id]);

  if (error) return <div className="card error-box" role="alert">Could not open project {projectId}: {error}</div>;
  if (!loaded) return <div className="loading">Loading editor…</div>;
  return (
    <ReactFlowProvider>
      <Editor key={id} {...loaded} />
    </ReactFlowProvider>
  );
}

function isTyping(target: EventTarget | null): boolean {
  const element = target as HTMLElement | null;
  if (!element) return false;
  return ["INPUT", "TEXTAREA", "SELECT"].includes(element.tagName) || element.isContentEditable;
}

function download(name: string, href: string) {
  const anchor = document.createElement("a");
  anchor.href = href;
  anchor.download = name;
  document.body.appendChild(anchor);
  anchor.click();
  anchor.remove();
}

function saveErrors(caught: unknown): string[] {
  if (caught instanceof ApiError && caught.details && typeof caught.details === "object") {
    const details = caught.details as { errors?: GraphErrorItem[]; nodes?: Record<string, { errors?: GraphErrorItem[] }> };
    const listed = [...(details.errors ?? []), ...Object.values(details.nodes ?? {}).flatMap((node) => node.errors ?? [])];
    if (listed.length) return listed.map((item) => (item.node ? `${item.node}: ${item.message}` : item.message));
  }
  return [errorMessage(caught)];
}

function Editor({ catalog, project, versions: initialVersions, latest }: Loaded) {
  const flow = useReactFlow<GraphNode, GraphEdge>();
  const navigate = useNavigate();
  const initial = useMemo(() => latest?.editor_document ?? emptyDocument(), [latest]);
  const [nodes, setNodes] = useState<GraphNode[]>(() => fromDocument(initial).nodes);
  const [edges, setEdges] = useState<GraphEdge[]>(() => fromDocument(initial).edges);
  const metadata = useRef(initial.metadata);
  const [versions, setVersions] = useState(initialVersions);
  const [loadedVersion, setLoadedVersion] = useState<GraphVersionSummary | null>(latest);
  const [initialKey] = useState(() => documentKey(fromDocumentKeyable(initial)));
  const [savedKey, setSavedKey] = useState<string>(() => (latest ? initialKey : documentKey(emptyDocument())));
  const [builtins, setBuiltins] = useState<BuiltinDataset[]>([]);
  const [validating, setValidating] = useState(false);
  const [validationFailed, setValidationFailed] = useState<string | null>(null);
  const [toast, setToast] = useState<string | null>(null);
  const [connectHint, setConnectHint] = useState<{ reason: string; x: number; y: number } | null>(null);
  const [saveOpen, setSaveOpen] = useState(false);
  const [saveBusy, setSaveBusy] = useState(false);
  const [saveProblems, setSaveProblems] = useState<string[]>([]);
  const [versionsOpen, setVersionsOpen] = useState(false);
  const [trainVersion, setTrainVersion] = useState<number | null>(null);
  const [block, setBlock] = useState<OpSchema | null>(null);
  const [historyState, setHistoryState] = useState({ canUndo: false, canRedo: false });
  const afterSave = useRef<((version: GraphVersion) => void) | null>(null);
  const fileInput = useRef<HTMLInputElement>(null);
  const wrapper = useRef<HTMLDivElement>(null);
  const clip = useRef<Clip | null>(null);
  const pointer = useRef({ x: 0, y: 0 });
  const lastCheck = useRef<string | null>(null);

  const { setCatalog, setReport, setDatasets, setOpenBlock } = useEditorStore.getState();
  const ops = useEditorStore((state) => state.ops);
  const report = useEditorStore((state) => state.report);
  const lookup = useCallback((name: string) => ops.get(name), [ops]);

  const document_ = useMemo(() => toDocument({ nodes, edges }, metadata.current), [nodes, edges]);
  const docKey = useMemo(() => documentKey(document_), [document_]);
  const dirty = docKey !== savedKey;

  // -- setup --------------------------------------------------------------------------------
  useEffect(() => {
    setCatalog(catalog);
    setReport(null);
    setOpenBlock(setBlock);
    fetchDatasets().then(setDatasets).catch((caught) => setToast(`Datasets unavailable: ${errorMessage(caught)}`));
    fetchBuiltinDatasets().then(setBuiltins).catch(() => setBuiltins([]));
    return () => setOpenBlock(null);
  }, [catalog, setCatalog, setReport, setDatasets, setOpenBlock]);

  useEffect(() => {
    if (!toast) return;
    const timer = window.setTimeout(() => setToast(null), 4000);
    return () => window.clearTimeout(timer);
  }, [toast]);

  // -- history ------------------------------------------------------------------------------
  const history = useRef(new History<EditorDocument>(document_));
  const changeKey = useRef<string | null>(null);
  useEffect(() => {
    // Undo and redo show the history's present, which is then already recorded.
    if (documentKey(history.current.present) !== docKey) history.current.push(document_, changeKey.current);
    changeKey.current = null;
    const { canUndo, canRedo } = history.current;
    setHistoryState((current) => (current.canUndo === canUndo && current.canRedo === canRedo ? current : { canUndo, canRedo }));
  }, [docKey, document_]);

  const showDocument = useCallback((document: EditorDocument, selected?: Set<string>) => {
    // The metadata too: a step of the history is the whole document, and undoing a template's
    // load must not keep the template's metadata (the canvas would then differ from the step,
    // count as a new change and drop the redo).
    metadata.current = document.metadata;
    const graph = fromDocument(document);
    setNodes(graph.nodes.map((node) => (selected?.has(node.id) ? { ...node, selected: true } : node)));
    setEdges(graph.edges);
  }, []);

  const undo = useCallback(() => {
    const previous = history.current.undo();
    if (!previous) return;
    showDocument(previous);
  }, [showDocument]);
  const redo = useCallback(() => {
    const next = history.current.redo();
    if (!next) return;
    showDocument(next);
  }, [showDocument]);

  // -- live validation ----------------------------------------------------------------------
  // Which canvas the report in the store describes, so that connection checks trust its shapes
  // only while the canvas is still that one.
  const validatedKey = useRef<string | null>(null);
  const currentKey = useRef(docKey);
  currentKey.current = docKey;
  useEffect(() => {
    let stale = false;
    const key = docKey;
    const timer = window.setTimeout(() => {
      setValidating(true);
      validateDocument(document_)
        .then((result) => {
          if (stale) return;
          validatedKey.current = key;
          setReport(result);
          setValidationFailed(null);
        })
        .catch((caught) => !stale && setValidationFailed(errorMessage(caught)))
        .finally(() => !stale && setValidating(false));
    }, VALIDATE_DELAY_MS);
    return () => {
      stale = true;
      window.clearTimeout(timer);
    };
    // Keyed on the document's text: selection changes make a new document object but nothing to validate.
  }, [docKey]);

  // -- fitting the view ---------------------------------------------------------------------
  // A loaded document (the latest version on opening, a template, an import, a version) is fitted
  // to the view, and fitted again as its nodes grow: validation adds shapes, parameter counts and
  // errors to them after the first fit. That stops once the user edits the graph or moves the view.
  const fitKey = useRef<string | null>(initialKey);
  const fitFrame = useRef<number | null>(null);
  const refitLoaded = useCallback(() => {
    if (fitKey.current !== currentKey.current || fitFrame.current !== null) return;
    fitFrame.current = window.requestAnimationFrame(() => {
      fitFrame.current = null;
      void flow.fitView(FIT_VIEW);
    });
  }, [flow]);
  useEffect(() => () => {
    if (fitFrame.current !== null) window.cancelAnimationFrame(fitFrame.current);
  }, []);
  const onMoveStart = useCallback((event: MouseEvent | TouchEvent | null) => {
    if (event) fitKey.current = null; // the user's own pan or zoom (fitting passes no event)
  }, []);
  useEffect(() => {
    if (fitKey.current !== docKey) fitKey.current = null;
  }, [docKey]);

  // -- canvas changes -----------------------------------------------------------------------
  const onNodesChange = useCallback((changes: NodeChange<GraphNode>[]) => {
    const moved = changes.filter((change) => change.type === "position").map((change) => change.id);
    if (moved.length) changeKey.current = `move:${moved.sort().join(",")}`;
    setNodes((current) => applyNodeChanges(changes, current));
    if (changes.some((change) => change.type === "dimensions")) refitLoaded();
  }, [refitLoaded]);
  const onEdgesChange = useCallback((changes: EdgeChange<GraphEdge>[]) => setEdges((current) => applyEdgeChanges(changes, current)), []);

  const graphRef = useRef({ nodes, edges });
  graphRef.current = { nodes, edges };

  // What validation inferred for a connection's source port (dtype and shape), or null while the
  // report describes an earlier canvas (its node of that id may have changed since).
  const inferredSource = useCallback((connection: Connection | GraphEdge): InferredTensor | null => {
    if (validatedKey.current !== currentKey.current) return null;
    return useEditorStore.getState().report?.nodes[connection.source]?.outputs[connection.sourceHandle ?? ""] ?? null;
  }, []);

  const isValidConnection = useCallback((connection: Connection | GraphEdge) => {
    const check = checkConnection(graphRef.current, connection, lookup, inferredSource(connection));
    const reason = check.ok ? null : check.reason;
    lastCheck.current = reason;
    setConnectHint((current) => (reason === null ? null : current?.reason === reason ? current : { reason, ...pointer.current }));
    return check.ok;
  }, [lookup, inferredSource]);

  const onConnect = useCallback((connection: Connection) => {
    const check = checkConnection(graphRef.current, connection, lookup, inferredSource(connection));
    if (!check.ok) {
      setToast(check.reason);
      return;
    }
    setEdges((current) => [...current, {
      id: edgeId(connection, current.map((edge) => edge.id)),
      type: EDGE_TYPE, source: connection.source, target: connection.target,
      sourceHandle: connection.sourceHandle ?? null, targetHandle: connection.targetHandle ?? null, data: {},
    }]);
  }, [lookup, inferredSource]);

  const onConnectEnd: OnConnectEnd = useCallback((_event, state) => {
    if (!state.isValid && state.toHandle && lastCheck.current) setToast(`Not connected: ${lastCheck.current}`);
    lastCheck.current = null;
    setConnectHint(null);
  }, []);

  // -- adding nodes -------------------------------------------------------------------------
  const addNode = useCallback((kind: string, position?: { x: number; y: number }) => {
    let at = position;
    if (!at) {
      const bounds = wrapper.current?.getBoundingClientRect();
      at = bounds ? flow.screenToFlowPosition({ x: bounds.left + bounds.width / 2, y: bounds.top + bounds.height / 2 }) : { x: 0, y: 0 };
      at = { x: at.x - 90, y: at.y - 40 };
    }
    setNodes((current) => {
      const id = nextId(kind, current.map((node) => node.id));
      const fields = kind === "input" ? { dtype: "float32" } : kind === "output" || kind === "loss" ? {} : { params: {} };
      const node: GraphNode = { id, type: NODE_TYPE, position: { x: Math.round(at!.x), y: Math.round(at!.y) }, data: { kind, fields }, selected: true };
      return [...current.map((other) => (other.selected ? { ...other, selected: false } : other)), node];
    });
  }, [flow]);

  const onDragOver = useCallback((event: DragEvent) => {
    if (!event.dataTransfer.types.includes(DRAG_MIME)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
  }, []);
  const onDrop = useCallback((event: DragEvent) => {
    const kind = event.dataTransfer.getData(DRAG_MIME);
    if (!kind) return;
    event.preventDefault();
    const position = flow.screenToFlowPosition({ x: event.clientX, y: event.clientY });
    addNode(kind, { x: position.x - 20, y: position.y - 20 });
  }, [flow, addNode]);

  // -- inspector ----------------------------------------------------------------------------
  const updateFields = useCallback((nodeId: string, fields: GraphNode["data"]["fields"], key: string) => {
    changeKey.current = key;
    setNodes((current) => current.map((node) => (node.id === nodeId ? { ...node, data: { ...node.data, fields } } : node)));
  }, []);

  const bindDataset = useCallback(async (nodeId: string, value: string, role: InputRole) => {
    const node = graphRef.current.nodes.find((candidate) => candidate.id === nodeId);
    if (!node) return;
    if (!value) {
      const fields = { ...node.data.fields };
      delete fields.dataset;
      updateFields(nodeId, fields, `${nodeId}:dataset`);
      return;
    }
    let dataset = useEditorStore.getState().datasets.find((candidate) => String(candidate.id) === value);
    if (!dataset && value.startsWith("builtin:")) {
      dataset = await createBuiltinDataset(value.slice("builtin:".length), project.id);
      setDatasets([...useEditorStore.getState().datasets, dataset]);
    }
    if (!dataset) throw new Error(`unknown dataset ${value}`);
    const schema = (dataset.schema ?? {}) as { arrays?: Record<string, { shape: number[]; dtype: string }>; target?: string };
    const name = ROLE_INPUT_NAME[role];
    const array = schema.arrays?.[name] ?? (role === "labels" && schema.target ? schema.arrays?.[schema.target] : undefined);
    const fields = { ...node.data.fields, dataset: dataset.id, role, name };
    if (array) Object.assign(fields, { shape: array.shape, dtype: array.dtype });
    updateFields(nodeId, fields, `${nodeId}:dataset`);
  }, [project.id, setDatasets, updateFields]);

  // -- selection, clipboard, layout ---------------------------------------------------------
  const selectNode = useCallback((nodeId: string) => {
    setNodes((current) => current.map((node) => ({ ...node, selected: node.id === nodeId })));
    setEdges((current) => current.map((edge) => (edge.selected ? { ...edge, selected: false } : edge)));
    const node = graphRef.current.nodes.find((candidate) => candidate.id === nodeId);
    if (node) flow.fitView({ nodes: [{ id: nodeId }], duration: 300, maxZoom: 1.2 });
  }, [flow]);

  const copy = useCallback(() => {
    const selected = graphRef.current.nodes.filter((node) => node.selected).map((node) => node.id);
    if (!selected.length) return;
    clip.current = copySelection(toDocument(graphRef.current), selected);
    setToast(`Copied ${selected.length} node${selected.length > 1 ? "s" : ""}`);
  }, []);
  const paste = useCallback(() => {
    if (!clip.current) return;
    const { nodes: current, edges: currentEdges } = graphRef.current;
    const pasted = pasteClip(clip.current, { nodes: current.map((node) => node.id), edges: currentEdges.map((edge) => edge.id) });
    clip.current = { nodes: pasted.nodes, edges: pasted.edges };
    const graph = fromDocument({ ...emptyDocument(), ...pasted });
    setNodes([...current.map((node) => ({ ...node, selected: false })), ...graph.nodes.map((node) => ({ ...node, selected: true }))]);
    setEdges([...currentEdges, ...graph.edges]);
  }, []);

  const deleteSelection = useCallback(() => {
    const { nodes: current, edges: currentEdges } = graphRef.current;
    // React Flow removes the deleted nodes' edges too, through onNodesChange and onEdgesChange.
    void flow.deleteElements({ nodes: current.filter((node) => node.selected), edges: currentEdges.filter((edge) => edge.selected) });
  }, [flow]);

  const autoLayout = useCallback(async () => {
    const { default: ELK } = await import("elkjs/lib/elk.bundled.js");
    const { nodes: current, edges: currentEdges } = graphRef.current;
    const sizes = Object.fromEntries(current.map((node) => [node.id, node.measured?.width && node.measured.height ? { width: node.measured.width, height: node.measured.height } : undefined]));
    const order = (nodeId: string) => {
      const node = current.find((candidate) => candidate.id === nodeId)!;
      const ports = nodePorts(node.data.kind, node.data.fields, lookup);
      return { inputs: ports.inputs.map((port) => port.name), outputs: ports.outputs.map((port) => port.name) };
    };
    const result = await new ELK().layout(buildElkGraph({ nodes: current, edges: currentEdges }, order, sizes));
    const positions = positionsFromElk(result);
    changeKey.current = null;
    setNodes((latest) => latest.map((node) => (positions[node.id] ? { ...node, position: positions[node.id] } : node)));
    window.requestAnimationFrame(() => flow.fitView({ ...FIT_VIEW, duration: 300 }));
  }, [flow, lookup]);

  const fit = useCallback(() => void flow.fitView({ ...FIT_VIEW, duration: 300 }), [flow]);

  // -- loading documents --------------------------------------------------------------------
  const confirmDiscard = useCallback(() => !dirty || window.confirm("The canvas has unsaved changes. Replace it anyway?"), [dirty]);

  const loadDocument = useCallback((document: EditorDocument) => {
    showDocument(document);
    fitKey.current = documentKey(fromDocumentKeyable(document));
    // Queued by React Flow until the new nodes are measured; refitLoaded follows their growth.
    void flow.fitView(FIT_VIEW);
  }, [flow, showDocument]);

  const loadVersion = useCallback((version: GraphVersion) => {
    if (!confirmDiscard()) return;
    loadDocument(version.editor_document);
    setLoadedVersion(version);
    setSavedKey(documentKey(fromDocumentKeyable(version.editor_document)));
  }, [confirmDiscard, loadDocument]);

  const loadTemplate = useCallback((template: Template) => {
    if (!confirmDiscard()) return;
    loadDocument(template.editor_document);
    setToast(`Loaded template ${String(template.title ?? template.name)}; save to keep it`);
  }, [confirmDiscard, loadDocument]);

  const importFile = useCallback(async (file: File) => {
    const result = parseEditorDocument(await file.text());
    if (!result.ok) {
      setToast(`Cannot import ${file.name}: ${result.error}`);
      return;
    }
    if (!confirmDiscard()) return;
    loadDocument(result.document);
    setToast(`Imported ${file.name}`);
  }, [confirmDiscard, loadDocument]);

  const exportJson = useCallback(() => {
    const blob = new Blob([JSON.stringify(toDocument(graphRef.current, metadata.current), null, 2)], { type: "application/json" });
    const url = URL.createObjectURL(blob);
    download(`${project.name.replace(/[^\w.-]+/g, "_") || "graph"}.netforge.json`, url);
    window.setTimeout(() => URL.revokeObjectURL(url), 1000);
  }, [project.name]);

  // -- saving and training ------------------------------------------------------------------
  const boundDataset = useMemo(() => {
    const bound = nodes.find((node) => node.data.kind === "input" && typeof node.data.fields.dataset === "number" && node.data.fields.role !== "labels")
      ?? nodes.find((node) => node.data.kind === "input" && typeof node.data.fields.dataset === "number");
    return bound ? (bound.data.fields.dataset as number) : null;
  }, [nodes]);

  const openSave = useCallback((then?: (version: GraphVersion) => void) => {
    afterSave.current = then ?? null;
    setSaveProblems([]);
    setSaveOpen(true);
  }, []);

  const save = useCallback(async (message: string) => {
    setSaveBusy(true);
    setSaveProblems([]);
    const document = toDocument(graphRef.current, metadata.current);
    try {
      const version = await saveVersion(project.id, document, message);
      setSavedKey(documentKey(document));
      setLoadedVersion(version);
      setVersions((current) => [version, ...current.filter((item) => item.id !== version.id)]);
      setSaveOpen(false);
      setToast(`Saved version ${version.number}`);
      const then = afterSave.current;
      afterSave.current = null;
      then?.(version);
    } catch (caught) {
      setSaveProblems(saveErrors(caught));
    } finally {
      setSaveBusy(false);
    }
  }, [project.id]);

  const train = useCallback(() => {
    if (dirty || !loadedVersion) openSave((version) => setTrainVersion(version.id));
    else setTrainVersion(loadedVersion.id);
  }, [dirty, loadedVersion, openSave]);

  const exportPython = useCallback(() => {
    if (!loadedVersion) return;
    if (boundDataset === null) {
      setToast("Bind an input node to a dataset first: the script loads it (inspector of the input node)");
      return;
    }
    download(`${project.name.replace(/[^\w.-]+/g, "_") || "graph"}_v${loadedVersion.number}.py`, scriptUrl(project.id, loadedVersion.id, boundDataset));
  }, [boundDataset, loadedVersion, project]);

  // -- leaving with unsaved changes ---------------------------------------------------------
  useEffect(() => {
    if (!dirty) return;
    const beforeUnload = (event: BeforeUnloadEvent) => {
      event.preventDefault();
      event.returnValue = "";
    };
    // In-app links navigate without unloading; ask before following one (capture runs before the router).
    const onClick = (event: MouseEvent) => {
      const anchor = (event.target as HTMLElement | null)?.closest?.("a[href]") as HTMLAnchorElement | null;
      if (!anchor || anchor.target === "_blank" || anchor.hasAttribute("download") || event.defaultPrevented) return;
      const url = new URL(anchor.href, window.location.href);
      if (url.origin !== window.location.origin || url.pathname === window.location.pathname) return;
      if (!window.confirm("The graph has unsaved changes. Leave without saving?")) {
        event.preventDefault();
        event.stopPropagation();
      }
    };
    window.addEventListener("beforeunload", beforeUnload);
    document.addEventListener("click", onClick, true);
    return () => {
      window.removeEventListener("beforeunload", beforeUnload);
      document.removeEventListener("click", onClick, true);
    };
  }, [dirty]);

  // -- keyboard -----------------------------------------------------------------------------
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      // A dialog (a block, the drawn diff of two versions) has the keyboard, not the canvas behind it.
      if (isTyping(event.target) || saveOpen || trainVersion !== null || document.querySelector("[aria-modal='true']")) return;
      const mod = event.ctrlKey || event.metaKey;
      const key = event.key.toLowerCase();
      if (mod && key === "z" && !event.shiftKey) { event.preventDefault(); undo(); }
      else if (mod && ((key === "z" && event.shiftKey) || key === "y")) { event.preventDefault(); redo(); }
      else if (mod && key === "c") copy();
      else if (mod && key === "v") { event.preventDefault(); paste(); }
      else if (mod && key === "a") {
        event.preventDefault();
        setNodes((current) => current.map((node) => ({ ...node, selected: true })));
        setEdges((current) => current.map((edge) => ({ ...edge, selected: true })));
      } else if (mod && key === "s") { event.preventDefault(); openSave(); }
      else if (!mod && !event.altKey && key === "l") { event.preventDefault(); void autoLayout(); }
      else if (!mod && !event.altKey && key === "f") { event.preventDefault(); fit(); }
      else if (!mod && !event.altKey && (key === "delete" || key === "backspace")) { event.preventDefault(); deleteSelection(); }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [undo, redo, copy, paste, openSave, autoLayout, fit, deleteSelection, saveOpen, trainVersion]);

  const selected = nodes.filter((node) => node.selected);
  const inspected = selected.length === 1 ? selected[0] : null;

  return (
    <div className="nf-editor">
      <div className="nf-toolbar" role="toolbar" aria-label="Editor">
        <Link to="/projects" className="muted">Projects</Link>
        <span aria-hidden>/</span>
        <strong className="nf-project-name">{project.name}</strong>
        <span className="muted">{loadedVersion ? `v${loadedVersion.number}` : "not saved yet"}</span>
        {dirty && <span className="nf-unsaved" data-testid="unsaved" title="The canvas differs from the loaded version">● unsaved changes</span>}
        <span className="spacer" />
        <button onClick={undo} disabled={!historyState.canUndo} title="Ctrl+Z">Undo</button>
        <button onClick={redo} disabled={!historyState.canRedo} title="Ctrl+Shift+Z / Ctrl+Y">Redo</button>
        <button onClick={() => void autoLayout()} title="L">Auto layout</button>
        <button onClick={fit} title="F">Fit view</button>
        <span className="nf-toolbar-sep" />
        <button onClick={() => setVersionsOpen(!versionsOpen)} aria-pressed={versionsOpen}>Versions</button>
        <button onClick={exportJson}>Export JSON</button>
        <button onClick={() => fileInput.current?.click()}>Import JSON</button>
        <input ref={fileInput} type="file" accept="application/json,.json" hidden aria-hidden
          onChange={(event) => { const file = event.target.files?.[0]; event.target.value = ""; if (file) void importFile(file); }} />
        <button onClick={exportPython} disabled={!loadedVersion}
          title={loadedVersion ? `A Python script of v${loadedVersion.number}${dirty ? " (the saved version, not the unsaved canvas)" : ""}` : "Save a version first"}>Export Python</button>
        <span className="nf-toolbar-sep" />
        <Link to={`/projects/${project.id}/runs`}>Runs</Link>
        <button onClick={() => openSave()} title="Ctrl+S">Save</button>
        <button className="primary" onClick={train}>Train</button>
      </div>
      <div className="nf-main">
        <Palette catalog={catalog} onAdd={(kind) => addNode(kind)} onLoadTemplate={loadTemplate} />
        <div className="nf-canvas" ref={wrapper} onPointerMove={(event) => { pointer.current = { x: event.clientX, y: event.clientY }; }}>
          <ReactFlow<GraphNode, GraphEdge>
            nodes={nodes}
            edges={edges}
            nodeTypes={nodeTypes}
            edgeTypes={edgeTypes}
            onNodesChange={onNodesChange}
            onEdgesChange={onEdgesChange}
            onConnect={onConnect}
            onConnectEnd={onConnectEnd}
            isValidConnection={isValidConnection}
            onDragOver={onDragOver}
            onDrop={onDrop}
            deleteKeyCode={null /* the editor's own shortcuts delete, so that no dialog or field passes the key on */}
            multiSelectionKeyCode={["Meta", "Control", "Shift"]}
            selectionKeyCode="Shift"
            onMoveStart={onMoveStart}
            // Not on an empty canvas: React Flow would keep the fit queued and zoom onto the first node dropped.
            fitView={initial.nodes.length > 0}
            fitViewOptions={FIT_VIEW}
            minZoom={0.1}
            proOptions={{ hideAttribution: true }}
          >
            <Background gap={20} />
            <MiniMap pannable zoomable ariaLabel="Overview" nodeColor={(node) => (report?.nodes[node.id]?.errors.length ? "#dc2626" : "#94a3b8")} />
            <Controls fitViewOptions={FIT_VIEW} />
          </ReactFlow>
          {nodes.length === 0 && (
            <div className="nf-empty">Drag an Input, some ops and a loss from the palette, or load a template.</div>
          )}
          {connectHint && (
            <div className="nf-connect-hint" role="status" style={{ left: connectHint.x + 14, top: connectHint.y + 14 }}>{connectHint.reason}</div>
          )}
          {toast && <div className="nf-toast" role="status">{toast}</div>}
        </div>
        {versionsOpen ? (
          <VersionsPanel projectId={project.id} versions={versions} loadedVersionId={loadedVersion?.id ?? null} canvas={document_}
            onLoad={loadVersion} onSelectNode={selectNode} onClose={() => setVersionsOpen(false)} />
        ) : (
          <Inspector node={inspected} selectionCount={selected.length} edges={edges} builtins={builtins} onChange={updateFields} onBind={bindDataset} />
        )}
      </div>
      <SummaryBar validating={validating} validationFailed={validationFailed} onSelectNode={selectNode} />
      {saveOpen && (
        <SaveDialog nextNumber={(versions[0]?.number ?? 0) + 1} errors={saveProblems} busy={saveBusy}
          onSave={(message) => void save(message)} onClose={() => { setSaveOpen(false); afterSave.current = null; }} />
      )}
      {trainVersion !== null && (
        <Modal title="Train" onClose={() => setTrainVersion(null)} wide>
          <TrainPanel projectId={project.id} graphVersionId={trainVersion} datasetId={boundDataset}
            onStarted={(run) => navigate(`/runs/${run.id}`)} onClose={() => setTrainVersion(null)} />
        </Modal>
      )}
      {block && <BlockDialog key={block.name} op={block} lookup={lookup} onOpen={setBlock} onClose={() => setBlock(null)} />}
    </div>
  );
}

/** A stored document as the canvas would write it back (rounded positions, normalized edges), so a
 *  freshly loaded version does not count as changed. */
function fromDocumentKeyable(document: EditorDocument): EditorDocument {
  return toDocument(fromDocument(document), document.metadata);
}

