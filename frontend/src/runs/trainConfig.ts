// The train panel's model: a form generated from the engine's training-option schema (served by
// GET /api/training-options: optimizers, schedules, early stopping and the top-level options with
// their labels, defaults and bounds), the request body it becomes, checked by the engine's
// validator repeated in ./trainingOptions, and server errors put back on the fields they name.
import { ApiError } from "../api/client";
import { optionNamed, validateTrainingOptions, type FieldErrors, type OptionSpec, type TrainingOptionsSchema } from "./trainingOptions";

/** A template's recommended settings (a zoo graph's metadata.train and metadata.dataset). */
export interface Recommended {
  train?: { epochs?: number; batch_size?: number; optimizer?: string | Record<string, unknown> };
  dataset?: string;
}

export interface TrainForm {
  dataset: string;
  /** Top-level options by name (data, advanced and where groups): text of numbers, booleans, choices. */
  options: Record<string, string | boolean>;
  optimizer: string;
  learningRate: string;
  /** Set once the user types a learning rate: choosing another optimizer then keeps it. */
  learningRateEdited: boolean;
  /** The optimizer's other options as typed; an absent one shows and keeps its default. */
  optimizerOptions: Record<string, string>;
  schedule: string;
  scheduleOptions: Record<string, string>;
  /** After warm-up: another schedule's name, or constant. */
  then: string;
  thenOptions: Record<string, string>;
  earlyStopping: boolean;
  /** Early stopping's monitor, patience, min_delta and restore_best; the mode follows the monitor. */
  stopping: Record<string, string | boolean>;
  name: string;
  tags: string;
}

/** The groups of top-level options the panel shows as fields of their own. */
export const FORM_GROUPS = ["data", "augmentation", "advanced", "fine_tuning", "where"];
/** The groups whose options a run's hyperparameters carry only when changed from their defaults. */
const CHANGED_ONLY_GROUPS = ["augmentation", "advanced", "fine_tuning"];

const text = (value: unknown): string | boolean => (typeof value === "boolean" ? value : value === null || value === undefined ? "" : String(value));

export function defaultLearningRate(schema: TrainingOptionsSchema, optimizer: string): string {
  const lr = optionNamed(schema.optimizers.find((choice) => choice.name === optimizer)?.params ?? [], "lr");
  return text(lr?.default) as string;
}

/** The form as the schema's defaults fill it, with a template's recommended settings on top. */
export function defaultForm(schema: TrainingOptionsSchema, dataset: string, recommended?: Recommended | null): TrainForm {
  const options: Record<string, string | boolean> = {};
  for (const option of schema.options) if (FORM_GROUPS.includes(option.group)) options[option.name] = text(option.default);
  const stopping: Record<string, string | boolean> = {};
  for (const option of schema.early_stopping) if (option.name !== "mode") stopping[option.name] = text(option.default);
  stopping.monitor ||= "val_loss";
  const defaultOptimizer = optionNamed(schema.options, "optimizer")?.default as { name: string; lr?: number };
  const form: TrainForm = {
    dataset, options, optimizer: defaultOptimizer.name, learningRate: text(defaultOptimizer.lr) as string, learningRateEdited: false,
    optimizerOptions: {}, schedule: "constant", scheduleOptions: {}, then: "constant", thenOptions: {},
    earlyStopping: false, stopping, name: "", tags: "",
  };
  const train = recommended?.train;
  if (!train) return form;
  for (const key of ["epochs", "batch_size"] as const) if (typeof train[key] === "number") options[key] = String(train[key]);
  const optimizer = typeof train.optimizer === "string" ? { name: train.optimizer } : train.optimizer;
  if (optimizer && typeof optimizer.name === "string" && schema.optimizers.some((choice) => choice.name === optimizer.name)) {
    const { name, lr, schedule: _schedule, ...rest } = optimizer;
    form.optimizer = name as string;
    form.learningRate = lr !== undefined ? String(lr) : defaultLearningRate(schema, form.optimizer);
    form.optimizerOptions = Object.fromEntries(Object.entries(rest).map(([key, value]) => [key, String(value)]));
  }
  return form;
}

/** Training steps per epoch for `rows` samples, as the trainer batches them (the last batch kept). */
export function stepsPerEpoch(rows: number | null, validationFraction: number, batchSize: number): number | null {
  if (!rows || !(batchSize > 0) || !(validationFraction >= 0 && validationFraction < 1)) return null;
  // engine/data/dataset.py's split: at least one validation row when there is a split.
  const validation = validationFraction > 0 ? Math.min(Math.max(Math.round(rows * validationFraction), 1), rows - 1) : 0;
  const training = rows - validation;
  return Math.max(1, Math.ceil(training / batchSize));
}

/** Typed text as the value it stands for: a number, null when empty, else the text (which the validator refuses by name). */
export function parseTyped(value: string | boolean): unknown {
  if (typeof value === "boolean") return value;
  const trimmed = value.trim();
  if (trimmed === "") return null;
  const number = Number(trimmed);
  return Number.isFinite(number) ? number : trimmed;
}

function valueOf(option: OptionSpec, typed: string | boolean | undefined): unknown {
  if (typed === undefined) return option.default;
  if (option.type === "choice" || option.type === "str") return typed;
  return parseTyped(typed);
}

export interface Request {
  /** The `hyperparameters` of POST /api/projects/<id>/runs. */
  hyperparameters: Record<string, unknown>;
  device: string;
  workers: unknown;
  /** Each bad field's dotted path (`optimizer.lr`) with the engine's message; empty when valid. */
  errors: FieldErrors;
}

/** The request the form becomes, checked as the API will check it. */
export function buildRequest(schema: TrainingOptionsSchema, form: TrainForm, rows: number | null): Request {
  const hyperparameters: Record<string, unknown> = {};
  for (const option of schema.options) {
    if (option.group !== "data" && !CHANGED_ONLY_GROUPS.includes(option.group)) continue;
    const value = valueOf(option, form.options[option.name]);
    // Augmentation and advanced options go only when changed, so a run records what was chosen.
    if (option.group === "data" || value !== option.default) hyperparameters[option.name] = value;
  }
  const epochs = Number(hyperparameters.epochs);
  const perEpoch = stepsPerEpoch(rows, Number(hyperparameters.validation_fraction), Number(hyperparameters.batch_size));
  hyperparameters.optimizer = optimizerConfig(schema, form, { epochs, perEpoch });
  const workers = parseTyped(form.options.workers ?? "1");
  if (typeof workers === "number" && workers > 1) {
    hyperparameters.strategy = form.options.strategy;
    const staleness = String(form.options.staleness ?? "").trim();
    if (form.options.strategy === "ps" && staleness !== "") hyperparameters.staleness = parseTyped(staleness);
  }
  if (form.earlyStopping) {
    const monitor = String(form.stopping.monitor);
    hyperparameters.early_stopping = {
      monitor,
      patience: parseTyped(form.stopping.patience),
      min_delta: parseTyped(form.stopping.min_delta) ?? 0,
      mode: higherIsBetterMonitor(monitor) ? "max" : "min",
      restore_best: form.stopping.restore_best,
    };
  }
  const checked = validateTrainingOptions(schema, { ...hyperparameters, workers });
  return { hyperparameters, device: String(form.options.device ?? "cpu"), workers, errors: checked.errors ?? {} };
}

interface RunSize { epochs: number; perEpoch: number | null; totalSteps?: number | null }

function optimizerConfig(schema: TrainingOptionsSchema, form: TrainForm, size: RunSize): Record<string, unknown> {
  const optimizer: Record<string, unknown> = { name: form.optimizer, lr: parseTyped(form.learningRate) };
  const params = schema.optimizers.find((choice) => choice.name === form.optimizer)?.params ?? [];
  for (const option of params) {
    const typed = form.optimizerOptions[option.name]?.trim() ?? "";
    if (option.name === "lr" || option.type === "schedule" || typed === "") continue;
    const value = parseTyped(typed);
    if (value !== option.default) optimizer[option.name] = value;
  }
  if (form.schedule !== "constant") {
    const schedule = scheduleConfig(schema, form.schedule, form.scheduleOptions, size);
    if (form.schedule === "warmup" && form.then !== "constant") {
      const warmupSteps = Number(schedule.warmup_steps);
      const remaining = size.perEpoch ? Math.max(1, size.perEpoch * size.epochs - warmupSteps) : null;
      schedule.then = scheduleConfig(schema, form.then, form.thenOptions, { ...size, totalSteps: remaining });
    }
    optimizer.schedule = schedule;
  }
  return optimizer;
}

function scheduleConfig(schema: TrainingOptionsSchema, name: string, values: Record<string, string>, size: RunSize): Record<string, unknown> {
  const config: Record<string, unknown> = { name };
  for (const option of schema.schedules.find((choice) => choice.name === name)?.params ?? []) {
    if (option.type === "schedule") continue;
    const typed = values[option.name]?.trim() ?? "";
    // An empty length is proposed from the dataset's size; left out when unknown, the validator names it.
    const value = typed === "" ? proposedValue(option.name, size) : parseTyped(typed);
    if (value !== null) config[option.name] = value;
  }
  return config;
}

/** What an empty schedule length means: one epoch, or the whole run. */
export function proposedValue(option: string, size: RunSize): number | null {
  if (!size.perEpoch) return null;
  if (option === "total_steps") return size.totalSteps ?? size.perEpoch * size.epochs;
  if (option === "step_size" || option === "warmup_steps") return size.perEpoch;
  return null;
}

export function higherIsBetterMonitor(monitor: string): boolean {
  return /accuracy|auc|precision|recall|f1|r2/.test(monitor);
}

/** The monitors early stopping may watch on a dataset of this task (the metrics a run reports by default). */
export function monitorChoices(schema: TrainingOptionsSchema, task: string): string[] {
  const metrics = (schema as { default_metrics?: Record<string, string[]> }).default_metrics?.[task] ?? [];
  return ["val_loss", ...metrics.map((metric) => `val_${metric}`), "loss", ...metrics];
}

const RUN_FIELDS = ["dataset", "device", "workers", "name", "tags"];

/**
 * Server errors ({"error": {message, details: {"hyperparameters.optimizer.lr": [...]}}}) by form
 * field: a training option's path without "hyperparameters.", the run's own fields as they are;
 * what names no field is returned under "form".
 */
export function fieldErrors(error: unknown): FieldErrors {
  if (!(error instanceof ApiError)) return { form: error instanceof Error ? error.message : String(error) };
  const details = error.details && typeof error.details === "object" ? (error.details as Record<string, unknown>) : {};
  const errors: FieldErrors = {};
  for (const [key, value] of Object.entries(details)) {
    const message = Array.isArray(value) ? value.map(String).join("; ") : String(value);
    const field = key.startsWith("hyperparameters.") ? key.slice("hyperparameters.".length) : RUN_FIELDS.includes(key) ? key : "form";
    errors[field] ??= message;
  }
  if (!Object.keys(errors).length) errors.form = error.message;
  return errors;
}
