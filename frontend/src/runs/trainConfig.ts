// The training form's model: the engine's optimizers and schedules with their options
// (engine/optimizers.py and engine/schedules.py: the server checks every value against them and
// names the bad one), the request body it becomes, and server errors put back on its fields.
import { ApiError } from "../api/client";

export interface NumberOption {
  name: string;
  label: string;
  default: number | null;
  integer?: boolean;
  /** Must be given (a schedule's length); the form proposes one from the dataset's size. */
  required?: boolean;
  step?: string;
  hint?: string;
}

const WEIGHT_DECAY: NumberOption = { name: "weight_decay", label: "Weight decay", default: 0, step: "any", hint: "L2 penalty" };
const CLIP_NORM: NumberOption = { name: "clip_norm", label: "Clip norm", default: null, step: "any", hint: "empty: no clipping" };
const BETAS: NumberOption[] = [
  { name: "beta1", label: "β1", default: 0.9, step: "any" },
  { name: "beta2", label: "β2", default: 0.999, step: "any" },
  { name: "eps", label: "ε", default: 1e-8, step: "any" },
];

export const OPTIMIZERS: Record<string, { label: string; lr: number; options: NumberOption[] }> = {
  sgd: { label: "SGD", lr: 0.01, options: [WEIGHT_DECAY, CLIP_NORM] },
  momentum: { label: "SGD with momentum", lr: 0.01, options: [{ name: "momentum", label: "Momentum", default: 0.9, step: "any" }, WEIGHT_DECAY, CLIP_NORM] },
  nesterov: { label: "Nesterov momentum", lr: 0.01, options: [{ name: "momentum", label: "Momentum", default: 0.9, step: "any" }, WEIGHT_DECAY, CLIP_NORM] },
  adagrad: { label: "Adagrad", lr: 0.01, options: [{ name: "eps", label: "ε", default: 1e-10, step: "any" }, WEIGHT_DECAY, CLIP_NORM] },
  rmsprop: { label: "RMSprop", lr: 0.01, options: [{ name: "alpha", label: "α (decay)", default: 0.99, step: "any" }, { name: "eps", label: "ε", default: 1e-8, step: "any" }, WEIGHT_DECAY, CLIP_NORM] },
  adam: { label: "Adam", lr: 0.001, options: [...BETAS, WEIGHT_DECAY, CLIP_NORM] },
  adamw: { label: "AdamW", lr: 0.001, options: [...BETAS, { ...WEIGHT_DECAY, default: 0.01, hint: "decoupled" }, CLIP_NORM] },
};

export const SCHEDULES: Record<string, { label: string; options: NumberOption[] }> = {
  constant: { label: "Constant", options: [] },
  step: { label: "Step decay", options: [
    { name: "step_size", label: "Every (steps)", default: null, integer: true, required: true, hint: "default: one epoch" },
    { name: "gamma", label: "Factor γ", default: 0.1, step: "any" },
  ] },
  exponential: { label: "Exponential", options: [{ name: "gamma", label: "Factor γ per step", default: 0.999, step: "any" }] },
  cosine: { label: "Cosine annealing", options: [
    { name: "total_steps", label: "Total steps", default: null, integer: true, required: true, hint: "default: the whole run" },
    { name: "min_lr", label: "Minimum lr", default: 0, step: "any" },
  ] },
  warmup: { label: "Linear warm-up, then…", options: [
    { name: "warmup_steps", label: "Warm-up steps", default: null, integer: true, required: true, hint: "default: one epoch" },
  ] },
};

export const STRATEGIES: Record<TrainForm["strategy"], { label: string; hint: string }> = {
  allreduce: { label: "Ring all-reduce", hint: "workers exchange gradient chunks in a ring" },
  ps: { label: "Parameter server", hint: "workers send gradients to one server, which sums them" },
};

export const METRICS_BY_TASK: Record<string, string[]> = {
  classification: ["accuracy"],
  binary: ["accuracy", "roc_auc"],
  regression: ["mse", "mae", "r2"],
};

export interface TrainForm {
  dataset: string;
  validationFraction: string;
  optimizer: string;
  learningRate: string;
  optimizerOptions: Record<string, string>;
  schedule: string;
  scheduleOptions: Record<string, string>;
  /** After warm-up: another schedule's name, or constant. */
  then: string;
  thenOptions: Record<string, string>;
  batchSize: string;
  epochs: string;
  earlyStopping: boolean;
  monitor: string;
  patience: string;
  minDelta: string;
  restoreBest: boolean;
  seed: string;
  device: "cpu" | "gpu";
  workers: string;
  /** How the workers of a distributed run combine gradients (workers/distributed). */
  strategy: "allreduce" | "ps";
  /** Parameter server only: empty for synchronous, else the asynchronous server's staleness bound (steps). */
  staleness: string;
  name: string;
  tags: string;
}

export function defaultForm(datasetValue: string): TrainForm {
  return {
    dataset: datasetValue, validationFraction: "0.2", optimizer: "adam", learningRate: String(OPTIMIZERS.adam.lr),
    optimizerOptions: {}, schedule: "constant", scheduleOptions: {}, then: "constant", thenOptions: {},
    batchSize: "32", epochs: "10", earlyStopping: false, monitor: "val_loss", patience: "5", minDelta: "0",
    restoreBest: true, seed: "0", device: "cpu", workers: "1", strategy: "allreduce", staleness: "", name: "", tags: "",
  };
}

/** Training steps per epoch for `rows` samples, as the trainer batches them (the last batch kept). */
export function stepsPerEpoch(rows: number | null, validationFraction: number, batchSize: number): number | null {
  if (!rows || !(batchSize > 0) || !(validationFraction >= 0 && validationFraction < 1)) return null;
  // engine/data/dataset.py's split: at least one validation row when there is a split.
  const validation = validationFraction > 0 ? Math.min(Math.max(Math.round(rows * validationFraction), 1), rows - 1) : 0;
  const training = rows - validation;
  return Math.max(1, Math.ceil(training / batchSize));
}

export class FormError extends Error {
  constructor(readonly field: string, message: string) {
    super(message);
  }
}

/** The `hyperparameters` of POST /api/projects/<id>/runs; throws FormError for a value that is not a number. */
export function buildHyperparameters(form: TrainForm, rows: number | null): Record<string, unknown> {
  const epochs = integer(form.epochs, "epochs", "Epochs");
  const batchSize = integer(form.batchSize, "batch_size", "Batch size");
  const validationFraction = number(form.validationFraction, "validation_fraction", "Validation split");
  const perEpoch = stepsPerEpoch(rows, validationFraction, batchSize);
  const optimizerSpec = OPTIMIZERS[form.optimizer];
  const optimizer: Record<string, unknown> = { name: form.optimizer, lr: number(form.learningRate, "optimizer.lr", "Learning rate") };
  for (const option of optimizerSpec?.options ?? []) {
    const text = form.optimizerOptions[option.name]?.trim() ?? "";
    if (text === "") continue;
    const value = number(text, `optimizer.${option.name}`, option.label);
    if (value !== option.default) optimizer[option.name] = value;
  }
  if (form.schedule !== "constant") {
    const schedule = scheduleConfig(form.schedule, form.scheduleOptions, { epochs, perEpoch }, "schedule");
    if (form.schedule === "warmup" && form.then !== "constant") {
      const warmupSteps = Number(schedule.warmup_steps);
      const remaining = perEpoch ? Math.max(1, perEpoch * epochs - warmupSteps) : null;
      schedule.then = scheduleConfig(form.then, form.thenOptions, { epochs, perEpoch, totalSteps: remaining }, "then");
    }
    optimizer.schedule = schedule;
  }
  const hyperparameters: Record<string, unknown> = {
    epochs, batch_size: batchSize, validation_fraction: validationFraction, optimizer,
    seed: integer(form.seed || "0", "seed", "Seed"),
  };
  if ((Number(form.workers) || 1) > 1) {
    hyperparameters.strategy = form.strategy;
    if (form.strategy === "ps" && form.staleness.trim() !== "") {
      hyperparameters.staleness = integer(form.staleness, "staleness", "Staleness bound");
    }
  }
  if (form.earlyStopping) {
    hyperparameters.early_stopping = {
      monitor: form.monitor,
      patience: integer(form.patience, "early_stopping.patience", "Patience"),
      min_delta: number(form.minDelta || "0", "early_stopping.min_delta", "Minimum change"),
      mode: higherIsBetterMonitor(form.monitor) ? "max" : "min",
      restore_best: form.restoreBest,
    };
  }
  return hyperparameters;
}

function scheduleConfig(
  name: string, values: Record<string, string>,
  size: { epochs: number; perEpoch: number | null; totalSteps?: number | null }, prefix: string,
): Record<string, unknown> {
  const config: Record<string, unknown> = { name };
  for (const option of SCHEDULES[name]?.options ?? []) {
    const text = values[option.name]?.trim() ?? "";
    const field = `${prefix}.${option.name}`;
    if (text === "") {
      const proposed = proposedValue(option.name, size);
      if (option.required && proposed === null) throw new FormError(field, `${option.label} is needed (the dataset's size is unknown)`);
      if (proposed !== null) config[option.name] = proposed;
      continue;
    }
    config[option.name] = option.integer ? integer(text, field, option.label) : number(text, field, option.label);
  }
  return config;
}

/** What an empty schedule length means: one epoch, or the whole run. */
export function proposedValue(option: string, size: { epochs: number; perEpoch: number | null; totalSteps?: number | null }): number | null {
  if (!size.perEpoch) return null;
  if (option === "total_steps") return size.totalSteps ?? size.perEpoch * size.epochs;
  if (option === "step_size" || option === "warmup_steps") return size.perEpoch;
  return null;
}

export function higherIsBetterMonitor(monitor: string): boolean {
  return /accuracy|auc|precision|recall|f1|r2/.test(monitor);
}

function number(text: string, field: string, label: string): number {
  const value = Number(text.trim());
  if (text.trim() === "" || !Number.isFinite(value)) throw new FormError(field, `${label} must be a number`);
  return value;
}

function integer(text: string, field: string, label: string): number {
  const value = number(text, field, label);
  if (!Number.isInteger(value)) throw new FormError(field, `${label} must be a whole number`);
  return value;
}

/**
 * Server errors ({"error": {message, details: {"hyperparameters.epochs": [...]}}}) by form field.
 * Optimizer and schedule errors arrive under hyperparameters.optimizer with the option quoted in
 * the message ("adam: 'lr' must be > 0"); they go to that option's field. What names no field is
 * returned under "form".
 */
export function fieldErrors(error: unknown): Record<string, string> {
  if (!(error instanceof ApiError)) return { form: error instanceof Error ? error.message : String(error) };
  const details = error.details && typeof error.details === "object" ? (error.details as Record<string, unknown>) : {};
  const errors: Record<string, string> = {};
  for (const [key, value] of Object.entries(details)) {
    const message = Array.isArray(value) ? value.map(String).join("; ") : String(value);
    errors[fieldOfServerKey(key, message)] ??= message;
  }
  if (!Object.keys(errors).length) errors.form = error.message;
  return errors;
}

const DIRECT_FIELDS: Record<string, string> = {
  dataset: "dataset", device: "device", workers: "workers", name: "name", tags: "tags", notes: "tags",
  "hyperparameters.epochs": "epochs", "hyperparameters.batch_size": "batch_size",
  "hyperparameters.validation_fraction": "validation_fraction", "hyperparameters.seed": "seed",
  "hyperparameters.early_stopping": "early_stopping", "hyperparameters.strategy": "strategy",
  "hyperparameters.staleness": "staleness",
};

function fieldOfServerKey(key: string, message: string): string {
  if (DIRECT_FIELDS[key]) return DIRECT_FIELDS[key];
  if (key === "hyperparameters.optimizer") {
    const option = /'([a-z_0-9]+)'/.exec(message)?.[1];
    if (/schedule/.test(message)) return option ? `schedule.${option}` : "schedule";
    if (option === "lr") return "optimizer.lr";
    return option ? `optimizer.${option}` : "optimizer";
  }
  if (key.startsWith("hyperparameters.early_stopping")) return "early_stopping";
  return "form";
}
