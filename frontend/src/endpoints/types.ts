// The shapes of the endpoint API (webapp/endpoints/api.py).

export interface Endpoint {
  id: number;
  name: string;
  description: string;
  default_version: number | null;
  pinned: boolean;
  max_batch_size: number;
  max_queue_delay_ms: number;
  max_queue_size: number;
  created_at: string;
  updated_at: string;
  versions: number[];
  urls: { predict: string; metadata: string; health: string; ready: string; v2_infer: string; grpc_method: string;
    grpc_port: string | null };
}

export interface InputSchemaEntry {
  shape: (number | null)[];
  dtype: string;
  standardization: unknown | null;
}

export interface ModelVersion {
  number: number;
  state: "loading" | "ready" | "failed";
  error: string;
  run: number | null;
  created_at: string;
  weights_sha256: string;
  input_schema: {
    inputs?: Record<string, InputSchemaEntry>;
    label_input?: string | null;
    label_names?: string[] | null;
    task?: string;
  };
  source: { run?: number; checkpoint_epoch?: number; metrics?: Record<string, number> };
  is_default: boolean;
}

export interface ApiKey {
  id: number;
  name: string;
  prefix: string;
  created_at: string;
  revoked_at: string | null;
  active: boolean;
  key?: string; // only in the response that created it
}

export interface MetricsPoint {
  minute: string;
  requests: number;
  errors: number;
  mean_latency_ms: number | null;
  p50_latency_ms: number | null;
  p99_latency_ms: number | null;
  average_batch_size: number | null;
}

export interface MetricsTotal {
  version: number;
  protocol: string;
  requests: number;
  errors: number;
  mean_latency_ms: number | null;
  p99_latency_ms: number | null;
  average_batch_size: number | null;
}

export interface EndpointMetrics {
  minutes: MetricsPoint[];
  versions: MetricsTotal[];
}
