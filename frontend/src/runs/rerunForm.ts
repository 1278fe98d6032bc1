// "Rerun with changes": the train panel's form filled from a run, the inverse of buildRequest, so
// that starting it unchanged asks for the same training (same options, seed, dataset, device and
// workers) and any field can be edited first.
import type { Run } from "../api/types";
import { defaultForm, defaultLearningRate, FORM_GROUPS, type TrainForm } from "./trainConfig";
import type { TrainingOptionsSchema } from "./trainingOptions";

/** What a run was started with: the settings the train panel opens with. */
export type RunSettings = Pick<Run, "dataset" | "hyperparameters" | "device" | "workers" | "tags">;

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

/** A stored value as the form's text ("" for null, as an untouched empty field). */
function typed(value: unknown): string {
  return value === null || value === undefined ? "" : String(value);
}

function typedAll(values: Record<string, unknown>, leaveOut: string[]): Record<string, string> {
  return Object.fromEntries(Object.entries(values).filter(([key]) => !leaveOut.includes(key)).map(([key, value]) => [key, typed(value)]));
}

export function formFromRun(schema: TrainingOptionsSchema, run: RunSettings): TrainForm {
  const form = defaultForm(schema, String(run.dataset));
  const hyperparameters: Record<string, unknown> = isObject(run.hyperparameters) ? run.hyperparameters : {};
  for (const option of schema.options) {
    if (!FORM_GROUPS.includes(option.group) || !(option.name in hyperparameters)) continue;
    const value = hyperparameters[option.name];
    form.options[option.name] = typeof value === "boolean" ? value : typed(value);
  }
  // The run's own fields, not its options (the API keeps device and workers beside them).
  form.options.device = run.device;
  form.options.workers = String(run.workers);

  const stored = hyperparameters.optimizer;
  const optimizer = typeof stored === "string" ? { name: stored } : isObject(stored) ? stored : null;
  if (optimizer && typeof optimizer.name === "string" && schema.optimizers.some((choice) => choice.name === optimizer.name)) {
    form.optimizer = optimizer.name;
    form.learningRate = optimizer.lr !== undefined && optimizer.lr !== null ? String(optimizer.lr) : defaultLearningRate(schema, optimizer.name);
    // The run's rate was chosen: choosing another optimizer keeps it, as a typed one is kept.
    form.learningRateEdited = true;
    form.optimizerOptions = typedAll(optimizer, ["name", "lr", "schedule"]);
    if (isObject(optimizer.schedule) && typeof optimizer.schedule.name === "string") {
      const schedule = optimizer.schedule;
      form.schedule = schedule.name as string;
      form.scheduleOptions = typedAll(schedule, ["name", "then"]);
      if (isObject(schedule.then) && typeof schedule.then.name === "string") {
        form.then = schedule.then.name;
        form.thenOptions = typedAll(schedule.then, ["name"]);
      }
    }
  }

  if (isObject(hyperparameters.early_stopping)) {
    const stopping = hyperparameters.early_stopping;
    form.earlyStopping = true;
    for (const name of Object.keys(form.stopping)) {
      if (!(name in stopping)) continue;
      form.stopping[name] = typeof stopping[name] === "boolean" ? (stopping[name] as boolean) : typed(stopping[name]);
    }
  }
  form.tags = (run.tags ?? []).join(", ");
  return form;
}
