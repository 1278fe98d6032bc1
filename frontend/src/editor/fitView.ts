// Fitting the view. A loaded document (the latest version on opening, a template, an import, a
// version) is fitted to the view, and fitted again as its nodes grow: validation adds shapes,
// parameter counts and errors to them after the first fit. That stops once the user edits the
// graph or moves the view.
import { useReactFlow, useStoreApi, type FitViewOptions } from "@xyflow/react";
import { useCallback, useEffect, useMemo, useRef } from "react";
import type { GraphEdge, GraphNode } from "../graph/types";
import { useEditorStore } from "./store";

// Room around the fitted graph, in screen pixels, so that no node touches the palette or the
// inspector beside the canvas (a fraction of the canvas would leave a small graph none).
export const FIT_VIEW: FitViewOptions<GraphNode> = { padding: { x: "56px", y: "40px" }, maxZoom: 1.2 };

// The smallest zoom at which node titles and port names stay readable. Fitting a graph taller or
// wider than that allows (a long chain) shows its start at this zoom instead of all of it too small.
export const READABLE_ZOOM = 0.75;
const PADDING_PX = { x: 56, y: 40 };

export interface ViewFitting {
  /** Fit the view to a document just put on the canvas, and keep it fitted while its nodes grow. */
  fitLoaded(): void;
  /** The nodes changed size: fit again if the canvas still shows the loaded document untouched. */
  refitLoaded(): void;
  /** React Flow's onMoveStart: the user's own pan or zoom ends the fitting. */
  onMoveStart(event: MouseEvent | TouchEvent | null): void;
  /** Fit the view now (the toolbar's button, F, after a layout). */
  fit(): void;
  /** Bring one node into view. */
  focusNode(nodeId: string): void;
}

export function useViewFitting(): ViewFitting {
  const flow = useReactFlow<GraphNode, GraphEdge>();
  const flowStore = useStoreApi<GraphNode, GraphEdge>();
  // The document the view is fitted to, while it stays on the canvas unchanged; the project's
  // opening document at first.
  const fittedKey = useRef<string | null>(useEditorStore.getState().documentKey);
  const frame = useRef<number | null>(null);

  useEffect(() => useEditorStore.subscribe((state) => {
    if (fittedKey.current !== state.documentKey) fittedKey.current = null;
  }), []);
  useEffect(() => () => {
    if (frame.current !== null) window.cancelAnimationFrame(frame.current);
  }, []);

  /** Fit the graph, or where it is too big to read whole, show its top at the readable zoom. */
  const fitReadably = useCallback((animate: boolean) => {
    const { width, height } = flowStore.getState();
    const nodes = flow.getNodes();
    const bounds = flow.getNodesBounds(nodes);
    const room = { width: width - 2 * PADDING_PX.x, height: height - 2 * PADDING_PX.y };
    const fitting = Math.min(room.width / bounds.width, room.height / bounds.height);
    if (!nodes.length || !(bounds.width > 0 && bounds.height > 0) || fitting >= READABLE_ZOOM) {
      void flow.fitView(animate ? { ...FIT_VIEW, duration: 300 } : FIT_VIEW);
      return;
    }
    // Too big to read whole: its top (where a top-to-bottom graph starts), centred if it is narrow enough.
    const zoom = READABLE_ZOOM;
    const x = bounds.width * zoom <= room.width
      ? width / 2 - (bounds.x + bounds.width / 2) * zoom
      : PADDING_PX.x - bounds.x * zoom;
    // At once, not animated: a drop right after the fit lands where the final view shows it.
    void flow.setViewport({ x, y: PADDING_PX.y - bounds.y * zoom, zoom });
  }, [flow, flowStore]);
  const fit = useCallback(() => fitReadably(true), [fitReadably]);

  // A loaded document (a template's stored positions, a long import) opens as Fit view shows it:
  // whole, or its top at a readable zoom rather than all of it too small to read.
  const fitLoaded = useCallback(() => {
    fittedKey.current = useEditorStore.getState().documentKey;
    // Queued by React Flow until the new nodes are measured; refitLoaded follows their growth.
    void flow.fitView(FIT_VIEW).then(() => {
      if (fittedKey.current === useEditorStore.getState().documentKey) fitReadably(false);
    });
  }, [flow, fitReadably]);
  const refitLoaded = useCallback(() => {
    if (fittedKey.current !== useEditorStore.getState().documentKey || frame.current !== null) return;
    frame.current = window.requestAnimationFrame(() => {
      frame.current = null;
      fitReadably(false);
    });
  }, [fitReadably]);
  const onMoveStart = useCallback((event: MouseEvent | TouchEvent | null) => {
    if (event) fittedKey.current = null; // fitting passes no event
  }, []);
  const focusNode = useCallback((nodeId: string) => {
    if (useEditorStore.getState().nodes.some((node) => node.id === nodeId)) {
      void flow.fitView({ nodes: [{ id: nodeId }], duration: 300, maxZoom: 1.2 });
    }
  }, [flow]);
  return useMemo(() => ({ fitLoaded, refitLoaded, onMoveStart, fit, focusNode }), [fitLoaded, refitLoaded, onMoveStart, fit, focusNode]);
}
