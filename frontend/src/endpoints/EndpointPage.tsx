// One endpoint: its versions (pin, roll back, follow the newest, ONNX download), its API keys
// (created and shown once, revoked), the last hour's metrics, and ready-to-copy calls.
import { useCallback, useEffect, useState } from "react";
import { useParams } from "react-router-dom";
import { api, errorMessage } from "../api/client";
import { curlExample, featureInputs, grpcurlExample, pythonExample } from "./examples";
import { Sparkline } from "./Sparkline";
import type { ApiKey, Endpoint, EndpointMetrics, ModelVersion } from "./types";
import "./endpoints.css";


export function EndpointPage() {
  const { name = "" } = useParams();
  const base = `/api/v1/endpoints/${name}`;
  const [endpoint, setEndpoint] = useState<Endpoint | null>(null);
  const [versions, setVersions] = useState<ModelVersion[]>([]);
  const [keys, setKeys] = useState<ApiKey[]>([]);
  const [metrics, setMetrics] = useState<EndpointMetrics | null>(null);
  const [newKey, setNewKey] = useState<string | null>(null);
  const [keyName, setKeyName] = useState("");
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      const [detail, versionList, keyList] = await Promise.all([
        api<Endpoint>(base), api<ModelVersion[]>(`${base}/versions`), api<ApiKey[]>(`${base}/keys`),
      ]);
      setEndpoint(detail);
      setVersions(versionList);
      setKeys(keyList);
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }, [base]);

  useEffect(() => {
    void load();
    const refreshMetrics = () => api<EndpointMetrics>(`${base}/metrics`).then(setMetrics).catch(() => undefined);
    void refreshMetrics();
    const timer = window.setInterval(refreshMetrics, 10_000);
    return () => window.clearInterval(timer);
  }, [base, load]);

  async function act(path: string, init: Parameters<typeof api>[1] = { method: "POST" }) {
    setError(null);
    try {
      await api(path, init);
      await load();
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }

  async function createKey() {
    setError(null);
    try {
      const created = await api<ApiKey>(`${base}/keys`, { method: "POST", json: { name: keyName } });
      setNewKey(created.key ?? null);
      setKeyName("");
      await load();
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }

  if (!endpoint) return <div className="endpoints-page">{error ? <p className="error">{error}</p> : <p>Loading…</p>}</div>;
  const defaultVersion = versions.find((version) => version.is_default);
  const inputs = featureInputs(defaultVersion ?? versions[0]);
  const origin = window.location.origin;
  const grpcPort = endpoint.urls.grpc_port;  // null: this server serves no gRPC (NETFORGE_GRPC_PORT=0)
  const minutes = metrics?.minutes ?? [];

  return (
    <div className="endpoints-page">
      <h1>{endpoint.name}</h1>
      {endpoint.description && <p>{endpoint.description}</p>}
      <p className="muted">
        Default: {endpoint.default_version === null ? "none" : `v${endpoint.default_version}`}
        {endpoint.pinned ? " (pinned)" : " (follows the newest ready version)"} · batching: up to{" "}
        {endpoint.max_batch_size} instances, {endpoint.max_queue_delay_ms} ms, queue {endpoint.max_queue_size}
      </p>
      {error && <p className="error">{error}</p>}

      <section>
        <h2>Versions</h2>
        <div className="endpoint-actions">
          <button type="button" onClick={() => act(`${base}/rollback`)} disabled={versions.length < 2}>Roll back</button>
          <button type="button" onClick={() => act(`${base}/unpin`)} disabled={!endpoint.pinned}>Follow newest</button>
        </div>
        <table className="endpoints-table">
          <thead><tr><th>Version</th><th>State</th><th>Run</th><th>Published</th><th>Metrics of the run</th><th /></tr></thead>
          <tbody>
            {versions.map((version) => (
              <tr key={version.number} className={version.is_default ? "is-default" : undefined}>
                <td>v{version.number}{version.is_default && <span className="badge">default</span>}</td>
                <td title={version.error}>{version.state}</td>
                <td>{version.run ?? "—"}</td>
                <td>{new Date(version.created_at).toLocaleString()}</td>
                <td>{Object.entries(version.source.metrics ?? {})
                  .filter(([, value]) => typeof value === "number")
                  .slice(0, 3).map(([key, value]) => `${key} ${Number(value.toPrecision(4))}`).join(", ")}</td>
                <td>
                  <button type="button" disabled={version.is_default || version.state !== "ready"}
                          onClick={() => act(`${base}/versions/${version.number}/pin`)}>Pin</button>{" "}
                  <a href={`${base}/versions/${version.number}/onnx`} download>ONNX</a>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>

      <section>
        <h2>API keys</h2>
        {newKey && (
          <div className="new-key">
            <p>Copy this key now: it is not stored and will not be shown again.</p>
            <code data-testid="new-api-key">{newKey}</code>{" "}
            <button type="button" onClick={() => void navigator.clipboard?.writeText(newKey)}>Copy</button>{" "}
            <button type="button" onClick={() => setNewKey(null)}>Done</button>
          </div>
        )}
        <div className="endpoint-actions">
          <input value={keyName} onChange={(event) => setKeyName(event.target.value)} placeholder="key name (optional)"
                 maxLength={100} />
          <button type="button" onClick={() => void createKey()}>Create key</button>
        </div>
        <table className="endpoints-table">
          <thead><tr><th>Name</th><th>Key</th><th>Created</th><th>State</th><th /></tr></thead>
          <tbody>
            {keys.map((key) => (
              <tr key={key.id}>
                <td>{key.name || "—"}</td>
                <td><code>{key.prefix}…</code></td>
                <td>{new Date(key.created_at).toLocaleString()}</td>
                <td>{key.active ? "active" : `revoked ${new Date(key.revoked_at ?? "").toLocaleString()}`}</td>
                <td>{key.active && <button type="button" onClick={() => act(`${base}/keys/${key.id}`, { method: "DELETE" })}>
                  Revoke</button>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>

      <section>
        <h2>Last hour</h2>
        <div className="sparklines">
          <Sparkline label="requests/min" values={minutes.map((point) => point.requests)} />
          <Sparkline label="errors/min" values={minutes.map((point) => point.errors)} />
          <Sparkline label="mean latency" unit=" ms" values={minutes.map((point) => point.mean_latency_ms)} />
          <Sparkline label="average batch" values={minutes.map((point) => point.average_batch_size)} />
        </div>
        {metrics && metrics.versions.length > 0 && (
          <table className="endpoints-table" data-testid="endpoint-metrics">
            <thead><tr><th>Version</th><th>Protocol</th><th>Requests</th><th>Errors</th><th>Mean latency</th>
              <th>p99 (bucket)</th><th>Average batch</th></tr></thead>
            <tbody>
              {metrics.versions.map((total) => (
                <tr key={`${total.version}-${total.protocol}`}>
                  <td>v{total.version}</td><td>{total.protocol}</td><td>{total.requests}</td><td>{total.errors}</td>
                  <td>{total.mean_latency_ms === null ? "—" : `${total.mean_latency_ms.toFixed(2)} ms`}</td>
                  <td>{total.p99_latency_ms === null ? "—" : `≤ ${total.p99_latency_ms} ms`}</td>
                  <td>{total.average_batch_size === null ? "—" : total.average_batch_size.toFixed(1)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <p className="muted">Prometheus: <code>/api/v1/metrics</code> (your API token as the bearer).</p>
      </section>

      <section>
        <h2>Call it</h2>
        <p className="muted">Set <code>NETFORGE_KEY</code> to one of the keys above.</p>
        {[["curl", curlExample(origin, endpoint.name, inputs)], ["Python", pythonExample(origin, endpoint.name, inputs)],
          ["grpcurl", grpcPort ? grpcurlExample(`${window.location.hostname}:${grpcPort}`, endpoint.name, inputs)
            : "# this server serves no gRPC: start it with NETFORGE_GRPC_PORT set to a port"]].map(([title, text]) => (
          <div key={title} className="example">
            <h3>{title} <button type="button" onClick={() => void navigator.clipboard?.writeText(text)}>Copy</button></h3>
            <pre data-testid={`example-${title}`}>{text}</pre>
          </div>
        ))}
      </section>
    </div>
  );
}
