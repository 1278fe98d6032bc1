// Ready-to-copy calls of an endpoint: curl (REST), Python (requests) and grpcurl (gRPC). Pure
// functions of the endpoint and its input schema, so they are unit-tested apart from the page.
import type { ModelVersion } from "./types";

export interface ExampleInput {
  name: string;
  shape: (number | null)[];
  dtype: string;
}

/** The feature inputs of a version (the label input is not sent). */
export function featureInputs(version: ModelVersion | undefined): ExampleInput[] {
  const inputs = version?.input_schema.inputs ?? {};
  const label = version?.input_schema.label_input;
  return Object.entries(inputs)
    .filter(([name]) => name !== label)
    .map(([name, entry]) => ({ name, shape: entry.shape, dtype: entry.dtype }));
}

/** A zero-filled instance of an input's per-row shape, as nested lists. */
export function zeroInstance(shape: (number | null)[]): unknown {
  const rest = shape.slice(1).map((size) => size ?? 1);
  const build = (depth: number): unknown =>
    depth === rest.length ? 0 : Array.from({ length: rest[depth] }, () => build(depth + 1));
  return build(0);
}

function instanceJson(inputs: ExampleInput[]): string {
  if (inputs.length === 1) return JSON.stringify({ instances: [zeroInstance(inputs[0].shape)] });
  const instance = Object.fromEntries(inputs.map((input) => [input.name, zeroInstance(input.shape)]));
  return JSON.stringify({ instances: [instance] });
}

export function curlExample(origin: string, endpoint: string, inputs: ExampleInput[]): string {
  return [
    // -sS: no progress meter mixed into the JSON answer, but errors still shown.
    `curl -sS -X POST ${origin}/api/v1/endpoints/${endpoint}/predict \\`,
    `  -H "Authorization: Bearer $NETFORGE_KEY" \\`,
    `  -H "Content-Type: application/json" \\`,
    `  -d '${instanceJson(inputs)}'`,
  ].join("\n");
}

export function pythonExample(origin: string, endpoint: string, inputs: ExampleInput[]): string {
  return [
    "import os",
    "import requests",
    "",
    `body = ${instanceJson(inputs)}`,
    "response = requests.post(",
    `    "${origin}/api/v1/endpoints/${endpoint}/predict",`,
    '    headers={"Authorization": f"Bearer {os.environ[\'NETFORGE_KEY\']}"},',
    "    json=body,",
    "    timeout=10,",
    ")",
    "response.raise_for_status()",
    'print(response.json()["predictions"])',
  ].join("\n");
}

const BYTES_PER_VALUE: Record<string, number> = { float32: 4, float64: 8, int32: 4, int64: 8 };

/** grpcurl through the server's reflection (no proto file needed); tensors are raw bytes (base64
 * in grpcurl's JSON). */
export function grpcurlExample(host: string, endpoint: string, inputs: ExampleInput[]): string {
  const tensors = Object.fromEntries(
    inputs.map((input) => {
      const shape = [1, ...input.shape.slice(1).map((size) => size ?? 1)];
      const bytes = shape.reduce((total, size) => total * size, 1) * (BYTES_PER_VALUE[input.dtype] ?? 4);
      return [input.name, { dtype: input.dtype, shape, content: zeroBase64(bytes) }];
    }),
  );
  const request = JSON.stringify({ endpoint, inputs: tensors });
  return [
    "grpcurl -plaintext \\",
    `  -H "authorization: Bearer $NETFORGE_KEY" \\`,
    `  -d '${request}' \\`,
    `  ${host} netforge.serving.v1.PredictionService/Predict`,
  ].join("\n");
}

/** Base64 of `bytes` zero bytes (all zeros: "AAAA" per 3 bytes). */
export function zeroBase64(bytes: number): string {
  const full = Math.floor(bytes / 3);
  const rest = bytes % 3;
  return "AAAA".repeat(full) + (rest === 1 ? "AA==" : rest === 2 ? "AAA=" : "");
}
