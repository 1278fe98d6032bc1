// What the canvas's node and edge components read besides their own props: the catalog, the last
// validation report, the datasets (for bound inputs) and the version diff marks. The graph itself
// lives in the editor component (React Flow's controlled state).
import { create } from "zustand";
import type { Catalog, Dataset, OpSchema, ValidationReport } from "../api/types";

export type DiffMark = "added" | "changed";

interface EditorStore {
  catalog: Catalog | null;
  ops: Map<string, OpSchema>;
  report: ValidationReport | null;
  datasets: Dataset[];
  diffMarks: Record<string, DiffMark>;
  openBlock: ((op: OpSchema) => void) | null;
  setCatalog(catalog: Catalog): void;
  setReport(report: ValidationReport | null): void;
  setDatasets(datasets: Dataset[]): void;
  setDiffMarks(marks: Record<string, DiffMark>): void;
  setOpenBlock(open: ((op: OpSchema) => void) | null): void;
}

export const useEditorStore = create<EditorStore>((set) => ({
  catalog: null,
  ops: new Map(),
  report: null,
  datasets: [],
  diffMarks: {},
  openBlock: null,
  setCatalog: (catalog) => set({ catalog, ops: new Map(catalog.ops.map((op) => [op.name, op])) }),
  setReport: (report) => set({ report }),
  setDatasets: (datasets) => set({ datasets }),
  setDiffMarks: (diffMarks) => set({ diffMarks }),
  setOpenBlock: (openBlock) => set({ openBlock }),
}));
