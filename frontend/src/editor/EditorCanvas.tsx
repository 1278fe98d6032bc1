// The canvas: React Flow drawing the store's graph, with drops from the palette, connections
// checked while they are dragged (the reason shown beside the pointer), and the editor's toast.
import {
  Background, Controls, MiniMap, ReactFlow, useReactFlow,
  type Connection, type NodeChange, type OnConnectEnd,
} from "@xyflow/react";
import { useCallback, useRef, useState, type DragEvent, type RefObject } from "react";
import { EDGE_TYPE, NODE_TYPE, type GraphEdge, type GraphNode } from "../graph/types";
import { FIT_VIEW, type ViewFitting } from "./fitView";
import { NetNode } from "./NetNode";
import { DRAG_MIME } from "./Palette";
import { ShapeEdge } from "./ShapeEdge";
import { useEditorStore } from "./store";

const nodeTypes = { [NODE_TYPE]: NetNode };
const edgeTypes = { [EDGE_TYPE]: ShapeEdge };

interface EditorCanvasProps {
  wrapperRef: RefObject<HTMLDivElement | null>;
  view: ViewFitting;
  /** Whether the project opened with a graph to fit (an empty canvas is not fitted). */
  fitOnOpen: boolean;
  toast: string | null;
  onToast(message: string): void;
}

export function EditorCanvas({ wrapperRef, view, fitOnOpen, toast, onToast }: EditorCanvasProps) {
  const flow = useReactFlow<GraphNode, GraphEdge>();
  const nodes = useEditorStore((state) => state.nodes);
  const edges = useEditorStore((state) => state.edges);
  const report = useEditorStore((state) => state.report);
  const { onNodesChange: applyNodeChanges, onEdgesChange, addNode, connect, checkConnection } = useEditorStore.getState();
  const [connectHint, setConnectHint] = useState<{ reason: string; x: number; y: number } | null>(null);
  const pointer = useRef({ x: 0, y: 0 });
  const lastRefusal = useRef<string | null>(null);

  const onNodesChange = useCallback((changes: NodeChange<GraphNode>[]) => {
    applyNodeChanges(changes);
    if (changes.some((change) => change.type === "dimensions")) view.refitLoaded();
  }, [applyNodeChanges, view]);

  const isValidConnection = useCallback((connection: Connection | GraphEdge) => {
    const check = checkConnection(connection);
    const reason = check.ok ? null : check.reason;
    lastRefusal.current = reason;
    setConnectHint((current) => (reason === null ? null : current?.reason === reason ? current : { reason, ...pointer.current }));
    return check.ok;
  }, [checkConnection]);

  const onConnect = useCallback((connection: Connection) => {
    const check = connect(connection);
    if (!check.ok) onToast(check.reason);
  }, [connect, onToast]);

  const onConnectEnd: OnConnectEnd = useCallback((_event, state) => {
    if (!state.isValid && state.toHandle && lastRefusal.current) onToast(`Not connected: ${lastRefusal.current}`);
    lastRefusal.current = null;
    setConnectHint(null);
  }, [onToast]);

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
    // The pointer lands just under the new node's top edge, where its input ports are: dropped near
    // the canvas's top, they stay on the canvas.
    addNode(kind, { x: position.x - 20, y: position.y - 8 });
  }, [flow, addNode]);

  return (
    <div className="nf-canvas" ref={wrapperRef} onPointerMove={(event) => { pointer.current = { x: event.clientX, y: event.clientY }; }}>
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
        onMoveStart={view.onMoveStart}
        // Not on an empty canvas: React Flow would keep the fit queued and zoom onto the first node dropped.
        fitView={fitOnOpen}
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
  );
}
