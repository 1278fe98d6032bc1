// The server's JSON shapes, as the REST API (/api/schema/) and the run WebSocket send them.

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
}

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

export interface User {
  id: number;
  username: string;
  email?: string;
}

export interface Project {
  id: number;
  name: string;
  description: string;
  created_at: string;
  updated_at: string;
  latest_version?: GraphVersionSummary | null;
  [key: string]: unknown;
}

export interface GraphVersionSummary {
  id: number;
  number: number;
  name: string;
  message: string;
  created_at: string;
  summary: Record<string, unknown>;
}

export interface GraphVersion extends GraphVersionSummary {
  project: number;
  editor_document: EditorDocument;
  spec: unknown;
}

export type RunState = "queued" | "running" | "succeeded" | "failed" | "cancelled";

export interface Run {
  id: number;
  project: number;
  graph_version: number;
  graph_name: string;
  graph_version_number: number;
  dataset: number;
  dataset_name: string;
  name: string;
  hyperparameters: Record<string, unknown>;
  device: string;
  workers: number;
  state: RunState;
  cancel_requested: boolean;
  attempt: number;
  worker: string;
  created_by: string;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  heartbeat_at: string | null;
  epochs_completed: number;
  steps_completed: number;
  last_sequence: number;
  final_metrics: Record<string, number>;
  error: string;
  tags: string[];
  notes: string;
  [key: string]: unknown;
}

export interface Dataset {
  id: number;
  name: string;
  kind: string;
  builtin_name?: string;
  file_format?: string;
  schema?: Record<string, unknown>;
  [key: string]: unknown;
}

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
export interface DatasetSample {
  index: number;
  label: unknown;
  label_name: string | null;
  /** A PNG data URL, for image data. */
  image?: string;
  features: Record<string, unknown>;
}

export interface DatasetSamples {
  dataset: number;
  count: number;
  offset: number;
  limit: number;
  task: string;
  image_shape: number[] | null;
  label_names: string[] | null;
  feature_names: string[] | null;
  results: DatasetSample[];
}

// GET /api/runs/<id>/evaluation: what the trained model does on the held-out split. The fields are
// optional because classification and regression runs fill different ones.
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
