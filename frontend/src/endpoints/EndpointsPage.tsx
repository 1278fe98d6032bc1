// The user's endpoints: name, default version, batching limits; links to each endpoint's page.
import { useEffect, useState } from "react";
import { Link } from "react-router-dom";
import { api, errorMessage } from "../api/client";
import type { Endpoint } from "./types";
import "./endpoints.css";

export function EndpointsPage() {
  const [endpoints, setEndpoints] = useState<Endpoint[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    api<Endpoint[]>("/api/v1/endpoints").then(setEndpoints).catch((caught) => setError(errorMessage(caught)));
  }, []);

  return (
    <div className="endpoints-page">
      <h1>Endpoints</h1>
      <p className="muted">
        Published models answer over REST and gRPC. Publish a succeeded run from its page.
      </p>
      {error && <p className="error">{error}</p>}
      {endpoints === null && !error && <p>Loading…</p>}
      {endpoints?.length === 0 && <p>No endpoints yet.</p>}
      {endpoints && endpoints.length > 0 && (
        <table className="endpoints-table">
          <thead>
            <tr><th>Name</th><th>Default version</th><th>Versions</th><th>Batching</th><th>Description</th></tr>
          </thead>
          <tbody>
            {endpoints.map((endpoint) => (
              <tr key={endpoint.id}>
                <td><Link to={`/endpoints/${endpoint.name}`}>{endpoint.name}</Link></td>
                <td>{endpoint.default_version === null ? "none" : `v${endpoint.default_version}`}
                  {endpoint.pinned && <span className="badge">pinned</span>}</td>
                <td>{endpoint.versions.length}</td>
                <td>max {endpoint.max_batch_size}, {endpoint.max_queue_delay_ms} ms</td>
                <td>{endpoint.description}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
