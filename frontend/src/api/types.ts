// The server's JSON shapes, as the REST API (/api/schema/) and the run WebSocket send them.

export type ParamType = "int" | "float" | "bool" | "str" | "choice" | "axes" | "int_list" | "shape" | "dict";

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
  | { type: "run.history"; run: number; state: RunState; last_sequence: number; series: Record<string, SeriesHistory> }
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
