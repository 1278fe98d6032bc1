// The server's JSON shapes, as the REST API and the run WebSocket send them. The REST resources
// are the types generated from the server's OpenAPI document (schema.d.ts, from openapi.json by
// `make api-types`; never edited by hand), under the names the app imports. Written here by hand:
// the op catalog and the validation report (GET /api/ops and POST /api/graphs/validate serve the
// engine's JSON documents, which the OpenAPI document describes only as objects), the editor
// document, the WebSocket's messages, and the refinements of JSON fields the serializers declare
// without a type (marked "refined").
import type { components } from "./schema";

type Schemas = components["schemas"];

/** `T` with the fields of `Refined` typed as `Refined` says (JSON fields the schema leaves untyped). */
type Refine<T, Refined> = Omit<T, keyof Refined> & Refined;

export type ParamType = "int" | "float" | "bool" | "str" | "choice" | "axes" | "int_list" | "shape" | "dict" | "padding";

export interface ParamSchema {
  name: string;
  type: ParamType;
  doc: string;
  required: boolean;
  default?: unknown;
  minimum?: number;
  maximum?: number;
  choices?: unknown[];
  nullable?: boolean;
}

export interface PortSchema {
  name: string;
  dtype: string; // "float" | "int" | "any" | a concrete dtype
  doc: string;
  variadic?: boolean;
  optional?: boolean;
  differentiable?: boolean;
  /** The ranks the port takes, batch axis included: [min, max], max null for no upper bound;
   *  omitted for any rank. */
  rank?: [number, number | null];
}

export interface OpSchema {
  name: string;
  category: string;
  doc: string;
  params: ParamSchema[];
  inputs: PortSchema[];
  outputs: PortSchema[];
  is_loss: boolean;
  block: boolean;
  has_weights: boolean;
  graph?: unknown; // a block's inner graph (netforge.graph/1), so the editor can open it
}

export interface SpecialNodeSchema {
  type: "input" | "output" | "loss";
  doc: string;
  data: Record<string, string>;
  inputs: { name: string }[];
  outputs: { name: string }[];
}

export interface Template {
  name: string;
  doc?: string;
  description?: string;
  editor_document: EditorDocument;
  [key: string]: unknown;
}

export interface Catalog {
  format: string;
  engine_version: string;
  categories: string[];
  ops: OpSchema[];
  editor_format: string;
  special_nodes: SpecialNodeSchema[];
  templates: Template[];
}

// netforge.editor/1: what the canvas saves (see webapp/projects/converter.py).
export interface EditorNode {
  id: string;
  type: string; // an op name, or "input" | "output" | "loss"
  position: { x: number; y: number };
  data: {
    params?: Record<string, unknown>;
    label?: string;
    name?: string;
    shape?: number[];
    dtype?: string;
    batch?: boolean;
    [key: string]: unknown;
  };
}

export interface EditorEdge {
  id: string;
  source: string;
  sourceHandle?: string | null;
  target: string;
  targetHandle?: string | null;
  data?: { order?: number; [key: string]: unknown };
}

export interface EditorDocument {
  format: "netforge.editor/1";
  nodes: EditorNode[];
  edges: EditorEdge[];
  metadata?: Record<string, unknown>;
  viewport?: { x: number; y: number; zoom: number };
}

export interface GraphErrorItem {
  node: string | null;
  field: string | null;
  code: string;
  message: string;
  edge?: string;
  /** The one-step mend of the problem, when there is one (also the first of `fixes`). */
  fix?: GraphFix;
  fixes?: GraphFix[];
}

/** A machine-readable mend of a validation error (validation against a dataset, POST /api/graphs/validate?dataset=). */
export type GraphFix =
  /** The input takes the dataset's `input_shape`; a reshape to `shape` feeds its consumers. */
  | { kind: "insert_reshape"; shape: number[]; input_shape: number[] }
  /** The dataset's declared view gives its samples the input's shape. */
  | { kind: "set_view"; dataset: number; view: DatasetView }
  /** The node's parameter set to a value (the logits' units to the class count). */
  | { kind: "set_param"; param: string; value: number };

export type DatasetView = { kind: "flat" } | { kind: "image"; shape: number[]; layout: "chw" | "hwc" } | { kind: "sequence"; shape: number[] };

export interface TensorInfo {
  shape: (number | null)[];
  dtype: string;
}

export interface NodeReport {
  type: string | null;
  outputs: Record<string, TensorInfo>;
  parameters: number;
  flops_per_sample: number;
  weights: Record<string, TensorInfo | unknown>;
  errors: GraphErrorItem[];
}

export interface ValidationReport {
  ok: boolean;
  spec: unknown;
  nodes: Record<string, NodeReport>;
  edges: Record<string, { shape: (number | null)[] | null; dtype: string | null; errors: GraphErrorItem[] }>;
  errors: GraphErrorItem[];
  error_count: number;
  total_parameters: number;
  flops_per_sample: number;
  memory_bytes: number;
  batch_size: number;
}

export type User = Schemas["User"];

export type Project = Schemas["Project"];

// refined: a version's summary is the engine's totals for it (JSONField)
export type GraphVersionSummary = Refine<Schemas["GraphVersionSummary"], { readonly summary: Record<string, unknown> }>;

// refined: the saved editor document (JSONField)
export type GraphVersion = Refine<Schemas["GraphVersion"], { readonly summary: Record<string, unknown>; readonly editor_document: EditorDocument }>;

export type RunState = Schemas["RunStateEnum"];

// refined: the training options, final metrics and tags (JSONFields)
export type Run = Refine<Schemas["Run"], {
  readonly hyperparameters: Record<string, unknown>;
  readonly final_metrics: Record<string, number>;
  readonly tags: string[];
}>;

// refined: the dataset's arrays, options and preview rows (JSONFields)
export type Dataset = Refine<Schemas["Dataset"], {
  readonly schema: Record<string, unknown>;
  readonly options: Record<string, unknown>;
  readonly preview: unknown;
}>;

// One metric point as stored and streamed.
export interface MetricPoint {
  seq: number;
  name: string;
  step: number;
  epoch: number;
  value: number;
  wall_time: number;
}

export interface SeriesHistory {
  steps: number[];
  epochs: number[];
  values: number[];
  wall_times: number[];
  sequences: number[];
  total: number;
}

export type RunMessage =
  // catch_up_to: on a reconnect, the points after last_sequence up to it follow as run.points.
  | { type: "run.history"; run: number; state: RunState; last_sequence: number; catch_up_to: number; series: Record<string, SeriesHistory> }
  | { type: "run.points"; points: MetricPoint[] }
  | { type: "run.state"; state: RunState; epochs_completed: number; error?: string; final_metrics?: Record<string, number>; [key: string]: unknown };

export interface Page<T> {
  count: number;
  next: string | null;
  previous: string | null;
  results: T[];
}

export interface ApiErrorBody {
  error: { code: string; message: string; details?: unknown };
}

// GET /api/datasets/builtin: the engine's built-in datasets (added to the user's with POST /api/datasets).
export interface BuiltinDataset {
  name: string;
  task: string;
  description: string;
  shapes: Record<string, number[]>;
  options: Record<string, unknown>;
}

// GET /api/datasets/<id>/samples?offset=&limit=
export type DatasetSample = Schemas["Sample"];

export type DatasetSamples = Schemas["Samples"];

// GET /api/runs/<id>/evaluation: what the trained model does on the held-out split. The fields are
// optional because classification and regression runs fill different ones. Kept by hand (the
// server's shape is Schemas["Evaluation"]): runs/evaluation.ts also reads other spellings of its
// fields (label, prediction, pixels, y_true and y_pred, per-class arrays), which that type lacks.
export interface RunEvaluation {
  /** pending (run not finished), ready, failed (with error), unavailable (with reason). */
  state?: "pending" | "ready" | "failed" | "unavailable";
  reason?: string;
  error?: string;
  run_state?: string;
  kind?: "classification" | "regression";
  task?: string;
  split?: string;
  rows?: number;
  class_names?: string[];
  label_names?: string[];
  confusion_matrix?: number[][];
  per_class?: { name?: string; class?: string | number; label?: string; precision?: number; recall?: number; f1?: number; support?: number }[];
  precision?: number[];
  recall?: number[];
  f1?: number[];
  support?: number[];
  samples?: EvaluationSample[];
  /** Regression: true and predicted values, as two columns or as pairs. */
  pairs?: [number, number][] | { index?: number[]; true: (number | number[])[]; predicted: (number | number[])[] };
  residuals?: { count?: number; mean?: number; std?: number; mae?: number; rmse?: number; min?: number; max?: number;
    median?: number; r2?: number | null; histogram?: { counts: number[]; edges: number[] } };
  y_true?: number[];
  y_pred?: number[];
  [key: string]: unknown;
}

export interface EvaluationSample {
  index?: number;
  image?: string;
  /** Image pixels, rows of grey values (or [channel][row][column]), scaled by the server or 0-255. */
  pixels?: number[][] | number[][][];
  true?: unknown;
  label?: unknown;
  true_name?: string;
  label_name?: string;
  predicted?: unknown;
  prediction?: unknown;
  predicted_name?: string;
  confidence?: number;
  probability?: number;
  /** The most probable classes, best first. */
  top?: { class: number; name: string; probability: number }[];
  correct?: boolean;
  features?: unknown;
  [key: string]: unknown;
}

// refined: a sweep's base options and pruner options (JSONFields); its trials' params are JSON values
export type SweepParameter = Schemas["SweepParameter"];
export type Trial = Schemas["Trial"];
export type Sweep = Refine<Schemas["Sweep"], { readonly hyperparameters: Record<string, unknown>; readonly pruner_options: Record<string, number> }>;
export type SweepDetail = Refine<Schemas["SweepDetail"], { readonly hyperparameters: Record<string, unknown>; readonly pruner_options: Record<string, number> }>;
export type SweepCreateRequest = Schemas["SweepCreateRequest"];
