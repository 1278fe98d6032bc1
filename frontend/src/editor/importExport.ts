// The canvas to and from files: the editor document as JSON (export and import) and the saved
// version as a Python script.
import type { EditorDocument } from "../api/types";
import { parseEditorDocument, type ParseResult } from "../graph/document";
import { scriptUrl } from "./api";

/** A project's name made safe for a file name. */
export function fileStem(projectName: string): string {
  return projectName.replace(/[^\w.-]+/g, "_") || "graph";
}

/** Have the browser save `href` as `name`. */
export function download(name: string, href: string): void {
  const anchor = document.createElement("a");
  anchor.href = href;
  anchor.download = name;
  document.body.appendChild(anchor);
  anchor.click();
  anchor.remove();
}

export function exportDocumentJson(document: EditorDocument, projectName: string): void {
  const blob = new Blob([JSON.stringify(document, null, 2)], { type: "application/json" });
  const url = URL.createObjectURL(blob);
  download(`${fileStem(projectName)}.netforge.json`, url);
  window.setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** An editor document from a file the user picked, or why it cannot be drawn. */
export async function readDocumentFile(file: File): Promise<ParseResult> {
  return parseEditorDocument(await file.text());
}

/** The server's Python script of a saved version, loading the bound dataset. */
export function downloadPythonScript(project: { id: number; name: string }, version: { id: number; number: number }, datasetId: number): void {
  download(`${fileStem(project.name)}_v${version.number}.py`, scriptUrl(project.id, version.id, datasetId));
}
