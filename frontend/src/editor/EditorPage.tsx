// The graph editor of one project: palette, canvas, inspector, live validation, versions, training.
// The graph and its history live in the store (store.ts); this page lays the parts out and wires
// the toolbar, the keyboard shortcuts and the dialogs to the store's actions.
import { ReactFlowProvider, useReactFlow } from "@xyflow/react";
import { useCallback, useEffect, useRef, useState } from "react";
import { useNavigate, useParams } from "react-router-dom";
import { errorMessage } from "../api/client";
import type { Catalog, EditorDocument, GraphVersion, OpSchema, Project, Template } from "../api/types";
import { boundDatasetId } from "../graph/binding";
import { TrainPanel } from "../runs/TrainPanel";
import { fetchBuiltinDatasets, fetchCatalog, fetchDatasets, fetchProject, fetchVersion, fetchVersions, type BuiltinDataset } from "./api";
import { BlockDialog, Modal, SaveDialog } from "./dialogs";
import { EditorCanvas } from "./EditorCanvas";
import { EditorToolbar } from "./EditorToolbar";
import { useViewFitting } from "./fitView";
import { downloadPythonScript, exportDocumentJson, readDocumentFile } from "./importExport";
import { Inspector } from "./Inspector";
import { Palette } from "./Palette";
import { ShortcutsOverlay } from "./ShortcutsOverlay";
import { selectDirty, selectTrainingDataset, useEditorStore } from "./store";
import { TrainingDataProblems } from "./TrainingDataProblems";
import { SummaryBar } from "./SummaryBar";
import { useClipboard } from "./useClipboard";
import { useGraphValidation } from "./useGraphValidation";
import { useSaving } from "./useSaving";
import { useShortcuts } from "./useShortcuts";
import { useToast } from "./useToast";
import { useUnsavedChangesGuard } from "./useUnsavedChangesGuard";
import { VersionsPanel } from "./VersionsPanel";
import "./editor.css";

interface Loaded {
  catalog: Catalog;
  project: Project;
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
    setLoaded(null);
    (async () => {
      const [catalog, project, versions] = await Promise.all([fetchCatalog(), fetchProject(id), fetchVersions(id)]);
      const latest = versions[0] ? await fetchVersion(id, versions[0].id) : null;
      if (cancelled) return;
      const store = useEditorStore.getState();
      store.setCatalog(catalog);
      store.openProject(versions, latest);
      setLoaded({ catalog, project });
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

function Editor({ catalog, project }: Loaded) {
  const navigate = useNavigate();
  const flow = useReactFlow();
  const [fitOnOpen] = useState(() => useEditorStore.getState().nodes.length > 0);
  const [toast, setToast] = useToast();
  const [builtins, setBuiltins] = useState<BuiltinDataset[]>([]);
  const [versionsOpen, setVersionsOpen] = useState(false);
  const [trainVersion, setTrainVersion] = useState<number | null>(null);
  // The dataset preselected when the train panel opened (the store's, at that moment: the panel
  // reports its choices back to the store, and must not reload on its own report).
  const [trainDataset, setTrainDataset] = useState<number | null>(null);
  const [block, setBlock] = useState<OpSchema | null>(null);
  const [shortcutsOpen, setShortcutsOpen] = useState(false);
  const canvas = useRef<HTMLDivElement>(null);

  const store = useEditorStore.getState();
  const nodes = useEditorStore((state) => state.nodes);
  const edges = useEditorStore((state) => state.edges);
  const document = useEditorStore((state) => state.document);
  const versions = useEditorStore((state) => state.versions);
  const loadedVersion = useEditorStore((state) => state.loadedVersion);
  const ops = useEditorStore((state) => state.ops);
  const dirty = useEditorStore(selectDirty);
  const lookup = useCallback((name: string) => ops.get(name), [ops]);

  const view = useViewFitting();
  const { validating, validationFailed } = useGraphValidation();
  const saving = useSaving(project.id, setToast);
  useUnsavedChangesGuard(dirty);

  useEffect(() => {
    const { setOpenBlock, setDatasets } = useEditorStore.getState();
    setOpenBlock(setBlock);
    fetchDatasets().then(setDatasets).catch((caught) => setToast(`Datasets unavailable: ${errorMessage(caught)}`));
    fetchBuiltinDatasets().then(setBuiltins).catch(() => setBuiltins([]));
    return () => setOpenBlock(null);
  }, [setToast]);

  // -- commands -----------------------------------------------------------------------------
  const addNodeInView = useCallback((kind: string) => {
    // In the middle of the visible canvas, as far as a new node's size is known.
    const bounds = canvas.current?.getBoundingClientRect();
    const center = bounds ? flow.screenToFlowPosition({ x: bounds.left + bounds.width / 2, y: bounds.top + bounds.height / 2 }) : { x: 0, y: 0 };
    store.addNode(kind, { x: center.x - 90, y: center.y - 40 });
  }, [flow, store]);

  const autoLayout = useCallback(async () => {
    await store.autoLayout();
    window.requestAnimationFrame(view.fit);
  }, [store, view]);

  const { copy, paste } = useClipboard(canvas, setToast);

  const confirmDiscard = useCallback(() => !dirty || window.confirm("The canvas has unsaved changes. Replace it anyway?"), [dirty]);

  const loadDocument = useCallback((document: EditorDocument) => {
    store.loadDocument(document);
    view.fitLoaded();
  }, [store, view]);

  const loadVersion = useCallback((version: GraphVersion) => {
    if (!confirmDiscard()) return;
    store.loadVersion(version);
    view.fitLoaded();
  }, [confirmDiscard, store, view]);

  const loadTemplate = useCallback((template: Template) => {
    if (!confirmDiscard()) return;
    loadDocument(template.editor_document);
    setToast(`Loaded template ${String(template.title ?? template.name)}; save to keep it`);
  }, [confirmDiscard, loadDocument, setToast]);

  const importFile = useCallback(async (file: File) => {
    const result = await readDocumentFile(file);
    if (!result.ok) {
      setToast(`Cannot import ${file.name}: ${result.error}`);
      return;
    }
    if (!confirmDiscard()) return;
    loadDocument(result.document);
    setToast(`Imported ${file.name}`);
  }, [confirmDiscard, loadDocument, setToast]);

  const boundDataset = boundDatasetId(nodes);

  const exportPython = useCallback(() => {
    if (!loadedVersion) return;
    if (boundDataset === null) {
      setToast("Bind an input node to a dataset first: the script loads it (inspector of the input node)");
      return;
    }
    downloadPythonScript(project, loadedVersion, boundDataset);
  }, [boundDataset, loadedVersion, project, setToast]);

  const train = useCallback(() => {
    const openTrainPanel = (versionId: number) => {
      setTrainDataset(selectTrainingDataset(useEditorStore.getState()));
      setTrainVersion(versionId);
    };
    // A draft is never trained: a real save (which validates) comes first.
    if (dirty || !loadedVersion || loadedVersion.draft) saving.open((version) => openTrainPanel(version.id));
    else openTrainPanel(loadedVersion.id);
  }, [dirty, loadedVersion, saving]);

  // The panel's choice is the dataset the editor validates against ("builtin:<name>" is not added
  // yet: then the inputs' bound dataset, if any, stands in).
  const chooseTrainingDataset = useCallback((value: string) => {
    useEditorStore.getState().setTrainingDataset(/^\d+$/.test(value) ? Number(value) : null);
  }, []);

  const selectNode = useCallback((nodeId: string) => {
    store.selectNode(nodeId);
    view.focusNode(nodeId);
  }, [store, view]);

  useShortcuts({
    undo: store.undo, redo: store.redo, copy, paste, selectAll: store.selectAll,
    save: () => saving.open(), autoLayout: () => void autoLayout(), fitView: view.fit,
    removeSelection: store.removeSelection, showShortcuts: () => setShortcutsOpen(true),
  }, !saving.isOpen && trainVersion === null);

  const selected = nodes.filter((node) => node.selected);
  return (
    <div className="nf-editor">
      <EditorToolbar project={project} versionsOpen={versionsOpen} onToggleVersions={() => setVersionsOpen(!versionsOpen)}
        onAutoLayout={() => void autoLayout()} onFit={view.fit} onExportJson={() => exportDocumentJson(document, project.name)}
        onImportJson={(file) => void importFile(file)} onExportPython={exportPython} onSave={() => saving.open()} onTrain={train}
        onShowShortcuts={() => setShortcutsOpen(true)} />
      <div className="nf-main">
        <Palette catalog={catalog} onAdd={addNodeInView} onLoadTemplate={loadTemplate} />
        <EditorCanvas wrapperRef={canvas} view={view} fitOnOpen={fitOnOpen} toast={toast} onToast={setToast} />
        {versionsOpen ? (
          <VersionsPanel projectId={project.id} versions={versions} loadedVersionId={loadedVersion?.id ?? null} canvas={document}
            onLoad={loadVersion} onSelectNode={selectNode} onClose={() => setVersionsOpen(false)} />
        ) : (
          <Inspector node={selected.length === 1 ? selected[0] : null} selectionCount={selected.length} edges={edges} builtins={builtins}
            onChange={store.updateFields} onBind={(nodeId, dataset, role) => store.bindDataset(nodeId, dataset, role, project.id)} />
        )}
      </div>
      <SummaryBar validating={validating} validationFailed={validationFailed} onSelectNode={selectNode} />
      {saving.isOpen && (
        <SaveDialog nextNumber={(versions[0]?.number ?? 0) + 1} errors={saving.problems} busy={saving.busy}
          onSave={(message) => void saving.save(message)} onSaveDraft={(message) => void saving.saveDraft(message)} onClose={saving.close} />
      )}
      {trainVersion !== null && (
        <Modal title="Train" onClose={() => setTrainVersion(null)} wide>
          <TrainingDataProblems onSelectNode={(nodeId) => {
            setTrainVersion(null);
            selectNode(nodeId);
          }} />
          <TrainPanel projectId={project.id} graphVersionId={trainVersion} datasetId={trainDataset} onDatasetChange={chooseTrainingDataset}
            onStarted={(run) => navigate(`/runs/${run.id}`)} onClose={() => setTrainVersion(null)} />
        </Modal>
      )}
      {block && <BlockDialog key={block.name} op={block} lookup={lookup} onOpen={setBlock} onClose={() => setBlock(null)} />}
      {shortcutsOpen && <ShortcutsOverlay onClose={() => setShortcutsOpen(false)} />}
    </div>
  );
}
