// The editor's calls to the REST API.
import { api, apiAll, ApiError, errorMessage } from "../api/client";
import type {
  BuiltinDataset, Catalog, Dataset, DatasetView, EditorDocument, GraphErrorItem, GraphVersion, GraphVersionSummary, Page, Project, ValidationReport,
} from "../api/types";

export type { BuiltinDataset };

let catalogRequest: Promise<Catalog> | null = null;

/** The op catalog, fetched once per page load (it changes only with a new engine). */
export function fetchCatalog(): Promise<Catalog> {
  catalogRequest ??= api<Catalog>("/api/ops").catch((error) => {
    catalogRequest = null;
    throw error;
  });
  return catalogRequest;
}

/** The server's validation of the document; against the dataset it will train on when `datasetId` is given. */
export function validateDocument(document: EditorDocument, datasetId: number | null = null): Promise<ValidationReport> {
  const query = datasetId !== null ? `?dataset=${datasetId}` : "";
  return api<ValidationReport>(`/api/graphs/validate${query}`, { method: "POST", json: document });
}

export function fetchProject(projectId: number): Promise<Project> {
  return api<Project>(`/api/projects/${projectId}`);
}

export function fetchVersions(projectId: number): Promise<GraphVersionSummary[]> {
  return apiAll<GraphVersionSummary>(`/api/projects/${projectId}/versions`);
}

export async function fetchLatestVersion(projectId: number): Promise<{ latest: GraphVersionSummary | null; count: number }> {
  const page = await api<Page<GraphVersionSummary>>(`/api/projects/${projectId}/versions?limit=1`);
  return { latest: page.results[0] ?? null, count: page.count };
}

export function fetchVersion(projectId: number, versionId: number): Promise<GraphVersion> {
  return api<GraphVersion>(`/api/projects/${projectId}/versions/${versionId}`);
}

export function saveVersion(projectId: number, document: EditorDocument, message: string): Promise<GraphVersion> {
  return api<GraphVersion>(`/api/projects/${projectId}/versions`, { method: "POST", json: { editor_document: document, message } });
}

/** Why the server refused to save a version, one line per problem (graph errors name their node). */
export function saveProblems(caught: unknown): string[] {
  if (caught instanceof ApiError && caught.details && typeof caught.details === "object") {
    const details = caught.details as { errors?: GraphErrorItem[]; nodes?: Record<string, { errors?: GraphErrorItem[] }> };
    const listed = [...(details.errors ?? []), ...Object.values(details.nodes ?? {}).flatMap((node) => node.errors ?? [])];
    if (listed.length) return listed.map((item) => (item.node ? `${item.node}: ${item.message}` : item.message));
  }
  return [errorMessage(caught)];
}

export function createProject(name: string, description = ""): Promise<Project> {
  return api<Project>("/api/projects", { method: "POST", json: { name, description } });
}

/** The user's projects; `archived`: "false" hides archived ones (the default), "true" only them, "all" both. */
export function fetchProjects(archived: "false" | "true" | "all" = "false"): Promise<Project[]> {
  return apiAll<Project>(`/api/projects${archived === "false" ? "" : `?archived=${archived}`}`);
}

export function setProjectArchived(projectId: number, archived: boolean): Promise<Project> {
  return api<Project>(`/api/projects/${projectId}`, { method: "PATCH", json: { archived } });
}

export function deleteProject(projectId: number): Promise<void> {
  return api<void>(`/api/projects/${projectId}`, { method: "DELETE" });
}

/** Save the document as a draft version: kept whatever its errors, never trained until promoted. */
export function saveDraft(projectId: number, document: EditorDocument, message: string): Promise<GraphVersion> {
  return api<GraphVersion>(`/api/projects/${projectId}/versions`, { method: "POST", json: { editor_document: document, message, draft: true } });
}

/** Save a draft's document as the next ordinary version (a 400 lists its errors when it still has some). */
export function promoteDraft(projectId: number, versionId: number): Promise<GraphVersion> {
  return api<GraphVersion>(`/api/projects/${projectId}/versions/${versionId}/promote`, { method: "POST" });
}

export function fetchDatasets(): Promise<Dataset[]> {
  return apiAll<Dataset>("/api/datasets");
}

export async function fetchBuiltinDatasets(): Promise<BuiltinDataset[]> {
  return (await api<{ results: BuiltinDataset[] }>("/api/datasets/builtin")).results;
}

/** A dataset of the user's made from a built-in (runs need a dataset id). */
export function createBuiltinDataset(builtin: string, project?: number): Promise<Dataset> {
  return api<Dataset>("/api/datasets", { method: "POST", json: { builtin, project: project ?? null } });
}

/** Change how the dataset's samples are shaped for graphs (PATCH; the server checks the view fits). */
export function updateDatasetView(datasetId: number, view: DatasetView): Promise<Dataset> {
  return api<Dataset>(`/api/datasets/${datasetId}`, { method: "PATCH", json: { view } });
}

export function scriptUrl(projectId: number, versionId: number, datasetId?: number | null): string {
  const query = datasetId ? `?dataset=${datasetId}` : "";
  return `/api/projects/${projectId}/versions/${versionId}/script${query}`;
}
