// One small fetch wrapper: JSON in and out, the session cookie, Django's CSRF header, and errors
// turned into ApiError carrying the server's {"error": {code, message, details}}.
import type { ApiErrorBody, Page } from "./types";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

function cookie(name: string): string | undefined {
  return document.cookie
    .split("; ")
    .find((part) => part.startsWith(name + "="))
    ?.slice(name.length + 1);
}

export async function api<T = unknown>(path: string, init: RequestInit & { json?: unknown } = {}): Promise<T> {
  const headers = new Headers(init.headers);
  let body = init.body;
  if (init.json !== undefined) {
    headers.set("Content-Type", "application/json");
    body = JSON.stringify(init.json);
  }
  const method = (init.method ?? "GET").toUpperCase();
  if (!["GET", "HEAD", "OPTIONS"].includes(method)) {
    const token = cookie("csrftoken");
    if (token) headers.set("X-CSRFToken", decodeURIComponent(token));
  }
  headers.set("Accept", "application/json");
  const response = await fetch(path.startsWith("/") ? path : `/api/${path}`, {
    ...init,
    method,
    body,
    headers,
    credentials: "same-origin",
  });
  if (response.status === 204) return undefined as T;
  const type = response.headers.get("Content-Type") ?? "";
  const payload = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    const error = (payload as ApiErrorBody)?.error;
    throw new ApiError(
      response.status,
      error?.code ?? String(response.status),
      error?.message ?? (typeof payload === "string" && payload ? payload.slice(0, 300) : response.statusText),
      error?.details,
    );
  }
  return payload as T;
}

/** Every item of a paginated list (follows `next`). */
export async function apiAll<T>(path: string): Promise<T[]> {
  const items: T[] = [];
  let next: string | null = path;
  while (next) {
    const page: Page<T> | T[] = await api<Page<T> | T[]>(next);
    if (Array.isArray(page)) return page;
    items.push(...page.results);
    next = page.next ? new URL(page.next, window.location.origin).pathname + new URL(page.next, window.location.origin).search : null;
  }
  return items;
}

export function errorMessage(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  if (error instanceof Error) return error.message;
  return String(error);
}

/**
 * POST a multipart form with upload progress (fetch cannot report it), with the same CSRF header
 * and ApiError as `api`. `onProgress` receives the fraction of the body sent, 0 to 1.
 */
export function apiUpload<T = unknown>(path: string, form: FormData, onProgress?: (fraction: number) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", path);
    request.withCredentials = true;
    request.setRequestHeader("Accept", "application/json");
    const token = cookie("csrftoken");
    if (token) request.setRequestHeader("X-CSRFToken", decodeURIComponent(token));
    if (onProgress) request.upload.onprogress = (event) => event.lengthComputable && onProgress(event.loaded / event.total);
    request.onerror = () => reject(new ApiError(0, "network", "the upload did not reach the server (network error)"));
    request.onload = () => {
      let payload: unknown = request.responseText;
      if ((request.getResponseHeader("Content-Type") ?? "").includes("json")) {
        try {
          payload = JSON.parse(request.responseText);
        } catch {
          payload = request.responseText;
        }
      }
      if (request.status >= 200 && request.status < 300) {
        resolve(payload as T);
        return;
      }
      const error = (payload as ApiErrorBody | null)?.error;
      reject(new ApiError(
        request.status,
        error?.code ?? String(request.status),
        error?.message ?? (typeof payload === "string" && payload ? payload.slice(0, 300) : request.statusText),
        error?.details,
      ));
    };
    request.send(form);
  });
}
