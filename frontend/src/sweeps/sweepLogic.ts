// A sweep's logic apart from React: what the train panel offers to search (numeric training options
// and node parameters), the search space built from its rows with the API's messages, and what the
// sweep page draws (parallel-coordinate axes and lines, importance bars, trials by state).
import type { EditorDocument, OpSchema, SweepDetail, SweepParameter, Trial } from "../api/types";
import type { TrainingOptionsSchema } from "../runs/trainingOptions";

export type ParameterType = "float" | "int" | "choice";
export type Sampler = "grid" | "random" | "tpe";
export type Pruner = "none" | "median" | "successive_halving";

/** One thing the sweep can vary: its API name (optimizer.lr, node:fc1.units) and a suggested range. */
export interface Candidate {
  name: string;
  label: string;
  type: ParameterType;
  low?: number;
  high?: number;
  log?: boolean;
  choices?: unknown[];
}

/** One row of the train panel's sweep section, as typed. */
export interface ParameterRow {
  name: string;
  type: ParameterType;
  low: string;
  high: string;
  log: boolean;
  choices: string;
}

export interface SweepForm {
  rows: ParameterRow[];
  sampler: Sampler;
  trialBudget: string;
  parallelism: string;
  pruner: Pruner;
}

export const NODE_PREFIX = "node:";

function around(value: unknown, type: "int" | "float"): { low: number; high: number; log: boolean } {
  const number = typeof value === "number" && Number.isFinite(value) && value > 0 ? value : type === "int" ? 8 : 0.01;
  if (type === "int") return { low: Math.max(1, Math.round(number / 4)), high: Math.max(2, Math.round(number * 4)), log: true };
  return { low: Number((number / 10).toPrecision(3)), high: Number((number * 10).toPrecision(3)), log: true };
}

/** The numeric and choice training options (the chosen optimizer's too) and the graph's node
 *  parameters, each with a range around its current value. */
export function candidateParameters(schema: TrainingOptionsSchema, optimizer: string, hyperparameters: Record<string, unknown>,
  document: EditorDocument | null, ops: OpSchema[]): Candidate[] {
  const candidates: Candidate[] = [];
  const current = (path: string[]) => path.reduce<unknown>((value, key) => (value && typeof value === "object" ? (value as Record<string, unknown>)[key] : undefined), hyperparameters);
  const chosen = schema.optimizers.find((choice) => choice.name === optimizer);
  const options = [
    ...schema.options.filter((option) => option.scope === "trainer").map((option) => ({ option, path: [option.name] })),
    ...(chosen?.params ?? []).map((option) => ({ option, path: ["optimizer", option.name] })),
  ];
  for (const { option, path } of options) {
    const name = path.join(".");
    const label = path.length > 1 ? `optimizer ${option.label || option.name}` : option.label || option.name;
    if (option.type === "int" || option.type === "float") {
      candidates.push({ name, label, type: option.type, ...around(current(path) ?? option.default, option.type) });
    } else if (option.type === "choice" && option.choices?.length) {
      candidates.push({ name, label, type: "choice", choices: [...option.choices] });
    }
  }
  candidates.push({ name: "optimizer.name", label: "optimizer", type: "choice", choices: schema.optimizers.map((choice) => choice.name) });
  const opsByName = new Map(ops.map((op) => [op.name, op]));
  for (const node of document?.nodes ?? []) {
    const op = opsByName.get(node.type);
    for (const param of op?.params ?? []) {
      const name = `${NODE_PREFIX}${node.id}.${param.name}`;
      const value = node.data.params?.[param.name] ?? param.default;
      if (param.type === "int" || param.type === "float") {
        candidates.push({ name, label: `${node.id} ${param.name}`, type: param.type, ...around(value, param.type) });
      } else if (param.type === "choice" && param.choices?.length) {
        candidates.push({ name, label: `${node.id} ${param.name}`, type: "choice", choices: [...param.choices] });
      }
    }
  }
  return candidates;
}

/** A new row for a candidate, filled with its suggested range or choices. */
export function rowFor(candidate: Candidate): ParameterRow {
  return {
    name: candidate.name, type: candidate.type, low: candidate.low === undefined ? "" : String(candidate.low),
    high: candidate.high === undefined ? "" : String(candidate.high), log: candidate.log ?? false,
    choices: (candidate.choices ?? []).map((choice) => String(choice)).join(", "),
  };
}

/** "16, 32, adam, true" -> [16, 32, "adam", true]: numbers, true/false/null, the rest as text. */
export function parseChoices(text: string): unknown[] {
  return text.split(",").map((part) => part.trim()).filter((part) => part !== "").map((part) => {
    if (part === "true") return true;
    if (part === "false") return false;
    if (part === "null") return null;
    const number = Number(part);
    return Number.isFinite(number) ? number : part;
  });
}

/** The search space the API takes, or the errors by row field (`parameters[0].low`), in the API's words. */
export function buildParameters(rows: ParameterRow[]): { parameters: SweepParameter[]; errors: Record<string, string> } {
  const errors: Record<string, string> = {};
  const parameters: SweepParameter[] = [];
  if (!rows.length) errors.parameters = "Add at least one parameter to search";
  const seen = new Set<string>();
  rows.forEach((row, index) => {
    const at = `parameters[${index}]`;
    if (!row.name) {
      errors[`${at}.name`] = "Choose what to vary";
      return;
    }
    if (seen.has(row.name)) errors[`${at}.name`] = `'${row.name}' appears twice`;
    seen.add(row.name);
    if (row.type === "choice") {
      const choices = parseChoices(row.choices);
      if (!choices.length) errors[`${at}.choices`] = "List the values to try, separated by commas";
      parameters.push({ name: row.name, type: "choice", choices });
      return;
    }
    const low = Number(row.low);
    const high = Number(row.high);
    if (row.low.trim() === "" || !Number.isFinite(low)) errors[`${at}.low`] = "'low' must be a finite number";
    if (row.high.trim() === "" || !Number.isFinite(high)) errors[`${at}.high`] = "'high' must be a finite number";
    if (row.type === "int" && Number.isFinite(low) && !Number.isInteger(low)) errors[`${at}.low`] = "'low' of an int range must be a whole number";
    if (row.type === "int" && Number.isFinite(high) && !Number.isInteger(high)) errors[`${at}.high`] = "'high' of an int range must be a whole number";
    if (Number.isFinite(low) && Number.isFinite(high) && !(low < high)) errors[`${at}.high`] = `'low' (${low}) must be below 'high' (${high})`;
    if (row.log && Number.isFinite(low) && low <= 0) errors[`${at}.low`] = `a log range must be above 0, got low ${low}`;
    parameters.push({ name: row.name, type: row.type, low, high, log: row.log });
  });
  return { parameters, errors };
}

/** The sweep settings the API takes, or errors by field (trial_budget, parallelism). */
export function buildSweepSettings(form: SweepForm): { settings: { sampler: Sampler; trial_budget: number; parallelism: number; pruner: Pruner }; errors: Record<string, string> } {
  const errors: Record<string, string> = {};
  const budget = Number(form.trialBudget);
  const parallelism = Number(form.parallelism);
  if (!Number.isInteger(budget) || budget < 1) errors.trial_budget = "Trials must be a whole number of at least 1";
  if (!Number.isInteger(parallelism) || parallelism < 1) errors.parallelism = "At once must be a whole number of at least 1";
  return { settings: { sampler: form.sampler, trial_budget: budget, parallelism, pruner: form.pruner }, errors };
}

export function defaultSweepForm(): SweepForm {
  return { rows: [], sampler: "tpe", trialBudget: "8", parallelism: "2", pruner: "none" };
}

// -- the sweep page ---------------------------------------------------------------------------------

/** One vertical axis of the parallel-coordinates plot: a parameter, or the objective (last). */
export interface Axis {
  name: string;
  kind: "linear" | "log" | "category";
  categories: string[];
  min: number;
  max: number;
}

const categoryKey = (value: unknown) => (typeof value === "string" ? value : JSON.stringify(value));

function numericAxis(name: string, values: number[], log: boolean): Axis {
  const finite = values.filter((value) => Number.isFinite(value) && (!log || value > 0));
  const min = finite.length ? Math.min(...finite) : 0;
  const max = finite.length ? Math.max(...finite) : 1;
  return { name, kind: log ? "log" : "linear", categories: [], min, max };
}

/** The axes: each parameter (its declared range, else its values), then the objective over the trials with a value. */
export function axesOf(sweep: Pick<SweepDetail, "parameters" | "trials" | "metric">): Axis[] {
  const axes = sweep.parameters.map((parameter): Axis => {
    if (parameter.type === "choice") {
      return { name: parameter.name, kind: "category", categories: (parameter.choices ?? []).map(categoryKey), min: 0, max: 0 };
    }
    const seen = sweep.trials.map((trial) => Number(trial.params[parameter.name]));
    return numericAxis(parameter.name, [parameter.low ?? NaN, parameter.high ?? NaN, ...seen], !!parameter.log);
  });
  axes.push(numericAxis(sweep.metric, sweep.trials.map((trial) => trial.value ?? NaN), false));
  return axes;
}

/** Where ``value`` sits on ``axis``, from 0 (bottom) to 1 (top); null when it has no place there. */
export function axisPosition(axis: Axis, value: unknown): number | null {
  if (axis.kind === "category") {
    const index = axis.categories.indexOf(categoryKey(value));
    if (index < 0) return null;
    return axis.categories.length === 1 ? 0.5 : index / (axis.categories.length - 1);
  }
  const number = Number(value);
  if (value === null || value === undefined || !Number.isFinite(number)) return null;
  if (axis.kind === "log") {
    if (number <= 0 || axis.min <= 0) return null;
    const span = Math.log(axis.max) - Math.log(axis.min);
    return span > 0 ? (Math.log(number) - Math.log(axis.min)) / span : 0.5;
  }
  const span = axis.max - axis.min;
  return span > 0 ? (number - axis.min) / span : 0.5;
}

export interface TrialLine {
  number: number;
  state: Trial["state"];
  best: boolean;
  /** [x, y] in the plot's pixels, one per axis the trial has a value on. */
  points: [number, number][];
}

/** Each trial's polyline across the axes of a ``width`` x ``height`` plot (y grows downwards: the
 *  top of an axis is its largest value). The best trial is drawn last, over the others. */
export function trialLines(sweep: Pick<SweepDetail, "parameters" | "trials" | "metric" | "best_trial">, axes: Axis[],
  width: number, height: number): TrialLine[] {
  const step = axes.length > 1 ? width / (axes.length - 1) : 0;
  const lines = sweep.trials.map((trial): TrialLine => {
    const values = [...sweep.parameters.map((parameter) => trial.params[parameter.name]), trial.value];
    const points: [number, number][] = [];
    values.forEach((value, index) => {
      const position = axisPosition(axes[index], value);
      if (position !== null) points.push([index * step, (1 - position) * height]);
    });
    return { number: trial.number, state: trial.state, best: trial.number === sweep.best_trial, points };
  });
  return [...lines.filter((line) => !line.best), ...lines.filter((line) => line.best)];
}

/** A tick label: short numbers (0.001, 1.2e-5, 128). */
export function formatValue(value: unknown): string {
  if (typeof value !== "number") return value === null || value === undefined ? "—" : String(value);
  if (Number.isInteger(value)) return String(value);
  const magnitude = Math.abs(value);
  return magnitude !== 0 && (magnitude < 1e-3 || magnitude >= 1e5) ? value.toExponential(2) : String(Number(value.toPrecision(4)));
}

/** The importance bars, largest first, as shares of 1. */
export function importanceBars(importance: Record<string, number>): { name: string; share: number }[] {
  return Object.entries(importance).map(([name, share]) => ({ name, share })).sort((a, b) => b.share - a.share || a.name.localeCompare(b.name));
}

/** How many trials are in each state, in the order a reader follows a sweep. */
export function trialCounts(trials: Pick<Trial, "state">[]): { state: Trial["state"]; count: number }[] {
  const order: Trial["state"][] = ["active", "completed", "pruned", "failed", "cancelled"];
  return order.map((state) => ({ state, count: trials.filter((trial) => trial.state === state).length })).filter((entry) => entry.count > 0);
}
