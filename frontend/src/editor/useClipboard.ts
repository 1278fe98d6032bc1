// Copy and paste of the selected nodes. A paste lands where the pointer is over the canvas, if it
// moved there since the last copy or paste; without it (a keyboard-only copy and paste) the copy
// goes beside the originals.
import { useReactFlow } from "@xyflow/react";
import { useCallback, useEffect, useRef, type RefObject } from "react";
import { useEditorStore } from "./store";

export function useClipboard(canvas: RefObject<HTMLDivElement | null>, setToast: (message: string | null) => void) {
  const flow = useReactFlow();
  const pointer = useRef<{ x: number; y: number } | null>(null);

  useEffect(() => {
    const element = canvas.current;
    if (!element) return;
    const moved = (event: PointerEvent) => { pointer.current = { x: event.clientX, y: event.clientY }; };
    const left = () => { pointer.current = null; };
    element.addEventListener("pointermove", moved);
    element.addEventListener("pointerleave", left);
    return () => {
      element.removeEventListener("pointermove", moved);
      element.removeEventListener("pointerleave", left);
    };
  }, [canvas]);

  const copy = useCallback(() => {
    const count = useEditorStore.getState().copySelection();
    pointer.current = null;
    if (count) setToast(`Copied ${count} node${count > 1 ? "s" : ""}`);
  }, [setToast]);

  const paste = useCallback(() => {
    const at = pointer.current;
    pointer.current = null;
    useEditorStore.getState().paste(at ? flow.screenToFlowPosition(at) : undefined);
  }, [flow]);

  return { copy, paste };
}
