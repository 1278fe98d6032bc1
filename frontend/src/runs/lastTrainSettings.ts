// The train panel's last settings, per project, in localStorage: opening it again starts from what
// was last trained in this project (the dataset included) instead of the defaults and the newest dataset.
import type { TrainForm } from "./trainConfig";

const KEY_PREFIX = "netforge.train-settings.project-";

/** Where a project's settings live (exported for the tests). */
export function settingsKey(projectId: number): string {
  return `${KEY_PREFIX}${projectId}`;
}

/** Remember the settings a run was started with (not its name: each run gets its own). */
export function rememberTrainForm(projectId: number, form: TrainForm, storage: Storage | undefined = globalStorage()): void {
  try {
    storage?.setItem(settingsKey(projectId), JSON.stringify({ ...form, name: "" }));
  } catch {
    // Storage full or refused (private mode): the panel then opens with the defaults, as before.
  }
}

/**
 * The fresh form with the remembered settings on top, or the fresh form unchanged when nothing is
 * remembered. Only fields the fresh form has are taken (options the engine no longer offers are
 * dropped, new ones keep their defaults), and a remembered dataset only while it is still offered.
 */
export function withRememberedSettings(projectId: number, fresh: TrainForm, offered: (dataset: string) => boolean,
  storage: Storage | undefined = globalStorage()): TrainForm {
  let saved: Partial<TrainForm>;
  try {
    saved = JSON.parse(storage?.getItem(settingsKey(projectId)) ?? "null") ?? {};
  } catch {
    return fresh;
  }
  if (typeof saved !== "object" || Array.isArray(saved)) return fresh;
  const merged: TrainForm = { ...fresh };
  const record = merged as unknown as Record<string, unknown>;
  for (const [field, value] of Object.entries(fresh)) {
    const remembered = (saved as Record<string, unknown>)[field];
    if (remembered === undefined || typeof remembered !== typeof value) continue;
    if (field === "options" || field === "stopping") {
      const known = value as Record<string, unknown>;
      record[field] = { ...known, ...Object.fromEntries(Object.entries(remembered as Record<string, unknown>)
        .filter(([name, option]) => name in known && typeof option === typeof known[name])) };
    } else if (field === "dataset") {
      if (typeof remembered === "string" && offered(remembered)) merged.dataset = remembered;
    } else if (field !== "name") {
      record[field] = remembered;
    }
  }
  return merged;
}

function globalStorage(): Storage | undefined {
  try {
    return typeof localStorage === "undefined" ? undefined : localStorage;
  } catch {
    return undefined;
  }
}
