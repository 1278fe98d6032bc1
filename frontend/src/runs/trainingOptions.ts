// The engine's training options as GET /api/training-options serves them (engine/training_options.py:
// the options, each optimizer's and schedule's, early stopping's), and the engine's validator
// repeated rule for rule and word for word, so the train panel refuses what the API would, with the
// same message on the same field. tests/fixtures/training_option_cases.json holds both to one table.

export interface OptionSpec {
  name: string;
  type: "int" | "float" | "bool" | "str" | "choice" | "optimizer" | "schedule" | "early_stopping" | "metrics";
  doc: string;
  label: string;
  required: boolean;
  default?: unknown;
  minimum?: number;
  maximum?: number;
  exclusive_minimum?: boolean;
  exclusive_maximum?: boolean;
  choices?: (string | number)[];
  nullable?: boolean;
  /** The train panel's section: data, optimizer, early_stopping, augmentation, advanced, where; "" for none. */
  group: string;
  /** "trainer": a TrainConfig field, filled with its default; "run": how the platform runs the trainers. */
  scope: "trainer" | "run";
}

export interface Choice {
  name: string;
  label: string;
  doc: string;
  params: OptionSpec[];
}

export interface TrainingOptionsSchema {
  format: string;
  options: OptionSpec[];
  optimizers: Choice[];
  schedules: Choice[];
  early_stopping: OptionSpec[];
  metrics: string[];
  /** Options a run's hyperparameters may not set, with the reason (the platform sets them). */
  reserved: Record<string, string>;
}

export type FieldErrors = Record<string, string>;
type Json = unknown;

/** A value as the engine's messages show it: JSON's spelling, strings in single quotes. */
export function show(value: Json): string {
  if (value === null || value === undefined) return "null";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "string") return `'${value}'`;
  if (typeof value === "number") return String(value);
  return JSON.stringify(value);
}

const isObject = (value: Json): value is Record<string, Json> => typeof value === "object" && value !== null && !Array.isArray(value);

/** The allowed range in words, as engine/option_schema.py's Option.domain says it. */
export function domain(option: OptionSpec): string {
  const low = option.minimum;
  const high = option.maximum;
  if (option.type === "int") {
    if (low === 1 && high === undefined) return "a positive integer";
    if (low !== undefined && high !== undefined) return `an integer from ${show(low)} to ${show(high)}`;
    if (low !== undefined) return `an integer >= ${show(low)}`;
    return high !== undefined ? `an integer <= ${show(high)}` : "an integer";
  }
  if (low !== undefined && high !== undefined) {
    return `in ${option.exclusive_minimum ? "(" : "["}${show(low)}, ${show(high)}${option.exclusive_maximum ? ")" : "]"}`;
  }
  if (low !== undefined) return `${option.exclusive_minimum ? ">" : ">="} ${show(low)}`;
  if (high !== undefined) return `${option.exclusive_maximum ? "<" : "<="} ${show(high)}`;
  return "a number";
}

class Problem extends Error {}

/** The value in canonical form, or throws Problem with what is wrong (no field name). */
function checkValue(option: OptionSpec, value: Json): Json {
  if (value === null && option.nullable) return null;
  switch (option.type) {
    case "int":
      if (typeof value !== "number" || !Number.isInteger(value)) throw new Problem(`must be an integer, got ${show(value)}`);
      break;
    case "float":
      if (typeof value !== "number") throw new Problem(`must be a number, got ${show(value)}`);
      if (!Number.isFinite(value)) throw new Problem(`must be finite, got ${show(value)}`);
      break;
    case "bool":
      if (typeof value !== "boolean") throw new Problem(`must be true or false, got ${show(value)}`);
      return value;
    case "str":
      if (typeof value !== "string") throw new Problem(`must be a string, got ${show(value)}`);
      return value;
    case "choice":
      if (typeof value === "boolean" || !(option.choices ?? []).includes(value as string | number)) {
        throw new Problem(`must be one of ${(option.choices ?? []).join(", ")}, got ${show(value)}`);
      }
      return value;
    default:
      throw new Error(`option '${option.name}' of type ${option.type} is checked by its own validator`);
  }
  const number = value as number;
  const low = option.minimum;
  const high = option.maximum;
  const tooLow = low !== undefined && (option.exclusive_minimum ? number <= low : number < low);
  const tooHigh = high !== undefined && (option.exclusive_maximum ? number >= high : number > high);
  if (tooLow || tooHigh) throw new Problem(`must be ${domain(option)}, got ${show(value)}`);
  return number;
}

type Nested = (value: Json, path: string, errors: FieldErrors) => Json;

function checkObject(options: OptionSpec[], raw: Record<string, Json>, path: string, errors: FieldErrors, nested: Record<string, Nested>): Record<string, Json> {
  const known = options.map((option) => option.name);
  const unknown = Object.keys(raw).filter((key) => !known.includes(key));
  if (unknown.length) {
    errors[path] = `${path} has unknown option(s) ${unknown.map(show).join(", ")}; valid options: ${known.join(", ") || "(none)"}`;
  }
  const cleaned: Record<string, Json> = {};
  for (const option of options) {
    const field = `${path}.${option.name}`;
    if (!(option.name in raw)) {
      if (option.required) errors[field] = `${path} is missing required option '${option.name}'`;
      continue;
    }
    const value = raw[option.name];
    if (nested[option.type]) {
      cleaned[option.name] = value === null && option.nullable ? null : nested[option.type](value, field, errors);
      continue;
    }
    try {
      cleaned[option.name] = checkValue(option, value);
    } catch (error) {
      if (!(error instanceof Problem)) throw error;
      errors[field] = `${field} ${error.message}`;
    }
  }
  return cleaned;
}

function checkChoiceConfig(
  kind: "optimizer" | "schedule", choices: Choice[], config: Json, path: string, errors: FieldErrors, nested: Record<string, Nested>,
): Json {
  if (typeof config === "string") config = { name: config };
  if (!isObject(config)) {
    errors[path] = `${path} must be ${kind === "optimizer" ? "an optimizer" : "a schedule"} name or an object with 'name', got ${show(config)}`;
    return null;
  }
  const { name, ...options } = config;
  const choice = choices.find((candidate) => candidate.name === name);
  if (typeof name !== "string" || !choice) {
    errors[`${path}.name`] = `unknown ${kind} ${show(name)}; valid ${kind}s: ${choices.map((candidate) => candidate.name).join(", ")}`;
    return null;
  }
  const before = Object.keys(errors).length;
  const cleaned = checkObject(choice.params, options, path, errors, nested);
  return Object.keys(errors).length === before ? { name, ...cleaned } : null;
}

function checkMetrics(schema: TrainingOptionsSchema, value: Json, errors: FieldErrors): Json {
  if (!Array.isArray(value)) {
    errors.metrics = `metrics must be a list of metric names or objects with 'name', got ${show(value)}`;
    return null;
  }
  for (const [index, spec] of value.entries()) {
    const name = isObject(spec) ? spec.name : spec;
    if (typeof name !== "string") {
      errors.metrics = `metrics[${index}] must be a metric name or an object with 'name', got ${show(spec)}`;
      return null;
    }
    if (!schema.metrics.includes(name)) {
      errors.metrics = `metrics names an unknown metric ${show(name)}; valid names: ${schema.metrics.join(", ")}`;
      return null;
    }
  }
  return [...value];
}

/**
 * engine.training_options.validate_training_options with the schema's reserved options: the
 * options in canonical form (trainer options' defaults filled in, run options where given), or
 * `{errors}` mapping each bad field's dotted path to the engine's message.
 */
export function validateTrainingOptions(
  schema: TrainingOptionsSchema, options: Record<string, Json>,
): { cleaned: Record<string, Json>; errors?: undefined } | { cleaned?: undefined; errors: FieldErrors } {
  const reserved = schema.reserved ?? {};
  const known = new Set(schema.options.map((option) => option.name));
  const errors: FieldErrors = {};
  for (const key of Object.keys(options)) {
    if (key in reserved) errors[key] = `'${key}' is not a training option here: ${reserved[key]}`;
    else if (!known.has(key)) {
      const names = [...known].filter((name) => !(name in reserved)).sort();
      errors[key] = `unknown training option ${show(key)}; the options are ${names.join(", ")}`;
    }
  }
  const nested: Record<string, Nested> = {};
  nested.schedule = (value, path, into) => checkChoiceConfig("schedule", schema.schedules, value, path, into, nested);
  nested.optimizer = (value, path, into) => checkChoiceConfig("optimizer", schema.optimizers, value, path, into, nested);
  const cleaned: Record<string, Json> = {};
  for (const option of schema.options) {
    if (option.name in reserved && option.name in options) continue;
    if (!(option.name in options)) {
      if (option.scope === "trainer") cleaned[option.name] = option.default ?? null;
      continue;
    }
    const value = options[option.name];
    if (value === null && option.nullable) {
      cleaned[option.name] = null;
    } else if (option.type === "optimizer") {
      cleaned.optimizer = nested.optimizer(value, "optimizer", errors);
    } else if (option.type === "early_stopping") {
      if (!isObject(value)) {
        errors.early_stopping = `early_stopping must be an object like {"monitor": "val_loss", "patience": 5}, got ${show(value)}`;
      } else {
        cleaned.early_stopping = checkObject(schema.early_stopping, value, "early_stopping", errors, nested);
      }
    } else if (option.type === "metrics") {
      cleaned.metrics = checkMetrics(schema, value, errors);
    } else {
      try {
        cleaned[option.name] = checkValue(option, value);
      } catch (error) {
        if (!(error instanceof Problem)) throw error;
        errors[option.name] = `${option.name} ${error.message}`;
      }
    }
  }
  Object.assign(errors, Object.fromEntries(Object.entries(checkFineTuningText(cleaned)).filter(([name]) => !(name in errors))));
  if (cleaned.staleness !== undefined && cleaned.staleness !== null) {
    for (const name of ["freeze", "lr_multipliers"]) {
      if (cleaned[name] && !(name in errors)) {
        errors[name] = `${name} needs the workers' own optimizer: an asynchronous parameter server (staleness) updates every parameter alike`;
      }
    }
  }
  if (cleaned.init_from_run !== undefined && cleaned.init_from_run !== null && cleaned.init_from_import === true) {
    errors.init_from_import = "init_from_run and init_from_import both choose the starting weights: give one of them";
  }
  if (cleaned.staleness !== undefined && cleaned.staleness !== null && !("staleness" in errors) && options.strategy !== "ps") {
    errors.staleness = "a staleness bound makes the parameter server asynchronous: it needs strategy 'ps'";
  }
  return Object.keys(errors).length ? { errors } : { cleaned };
}

const DECIMAL = /^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$/;

/** engine/finetune.py's check_text_options: the syntax of freeze, lr_multipliers and init_map. */
function checkFineTuningText(cleaned: Record<string, Json>): FieldErrors {
  const errors: FieldErrors = {};
  const entries = (value: Json) => (typeof value === "string" ? value.split(",").map((entry) => entry.trim()).filter(Boolean) : []);
  const pairs = (option: string, example: string): [string, string][] | null => {
    const found: [string, string][] = [];
    for (const entry of entries(cleaned[option])) {
      const at = entry.indexOf("=");
      if (at < 0 || !entry.slice(0, at).trim()) {
        errors[option] = `${option} entry ${show(entry)} is not of the form ${example}`;
        return null;
      }
      found.push([entry.slice(0, at).trim(), entry.slice(at + 1).trim()]);
    }
    return found;
  };
  for (const [pattern, value] of pairs("lr_multipliers", "'node=factor' (e.g. 'conv1=0.1')") ?? []) {
    const factor = DECIMAL.test(value) ? Number(value) : NaN;
    if (!Number.isFinite(factor) || factor < 0) {
      errors.lr_multipliers = `lr_multipliers gives ${show(pattern)} the factor ${show(value)}; a factor must be a number >= 0`;
      break;
    }
  }
  pairs("init_map", "'node=source_node' (e.g. 'classifier=fc8')");
  return errors;
}

export function optionNamed(options: OptionSpec[], name: string): OptionSpec | undefined {
  return options.find((option) => option.name === name);
}
