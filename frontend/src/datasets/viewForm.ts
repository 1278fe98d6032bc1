// A dataset's declared view (how its features are shaped for a graph), as the form edits it and as
// the API takes it: {} as stored, {kind: "flat"}, {kind: "image", shape: [C, H, W], layout} or
// {kind: "sequence", shape: [T, F]}.

export type ViewKind = "" | "flat" | "image" | "sequence";

export interface ViewForm {
  kind: ViewKind;
  shape: string; // "1, 8, 8"
  layout: "chw" | "hwc";
}

export function viewToForm(view: unknown): ViewForm {
  const value = (view && typeof view === "object" ? view : {}) as { kind?: string; shape?: number[]; layout?: string };
  const kind = value.kind === "flat" || value.kind === "image" || value.kind === "sequence" ? value.kind : "";
  return { kind, shape: Array.isArray(value.shape) ? value.shape.join(", ") : "", layout: value.layout === "hwc" ? "hwc" : "chw" };
}

/** The view the API takes, or an error naming what to fix. */
export function formToView(form: ViewForm): { view: Record<string, unknown> } | { error: string } {
  if (form.kind === "") return { view: {} };
  if (form.kind === "flat") return { view: { kind: "flat" } };
  const sizes = form.shape.split(/[\s,x×]+/).filter(Boolean).map(Number);
  const wanted = form.kind === "image" ? 3 : 2;
  if (sizes.length !== wanted || !sizes.every((size) => Number.isInteger(size) && size > 0)) {
    return { error: form.kind === "image" ? "Give the shape as channels, height, width (e.g. 1, 28, 28)." : "Give the shape as steps, features (e.g. 20, 3)." };
  }
  return { view: form.kind === "image" ? { kind: "image", shape: sizes, layout: form.layout } : { kind: "sequence", shape: sizes } };
}
