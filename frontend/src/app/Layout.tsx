import { useEffect, useState } from "react";
import { NavLink, Outlet, useLocation } from "react-router-dom";
import { api } from "../api/client";
import type { components } from "../api/schema";
import { WorkerStatusBadge } from "../workers/WorkerStatusBadge";
import { useAuth } from "./auth";

type Usage = components["schemas"]["Usage"];

function formatBytes(bytes: number): string {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

/** The user's runs and storage against the server's limits (GET /api/auth/me/), read again on every page change. */
function UsageSummary() {
  const location = useLocation();
  const [usage, setUsage] = useState<Usage | null>(null);
  useEffect(() => {
    let stale = false;
    api<{ usage?: Usage }>("/api/auth/me/")
      .then((me) => !stale && setUsage(me.usage ?? null))
      .catch(() => undefined); // the summary is a courtesy: the page works without it
    return () => {
      stale = true;
    };
  }, [location.pathname]);
  if (!usage) return null;
  const full = usage.storage_bytes >= usage.storage_quota_bytes;
  const title =
    `Runs: ${usage.runs_queued} queued (at most ${usage.runs_queued_limit}), ${usage.runs_running} running ` +
    `(at most ${usage.runs_running_limit} at once). Storage: checkpoints ${formatBytes(usage.storage.checkpoints)}, ` +
    `published models ${formatBytes(usage.storage.model_versions)}, datasets ${formatBytes(usage.storage.datasets)}, ` +
    `per-layer statistics ${formatBytes(usage.storage.layer_stats)}, ` +
    `imported weights ${formatBytes(usage.storage.imported_weights)}.`;
  return (
    <span className={`usage${full ? " over-quota" : ""}`} title={title} data-testid="usage">
      {usage.runs_queued} queued · {usage.runs_running} running · {formatBytes(usage.storage_bytes)} of{" "}
      {formatBytes(usage.storage_quota_bytes)}
    </span>
  );
}

export function Layout() {
  const { user, logout } = useAuth();
  return (
    <div className="app">
      <header className="topbar">
        <NavLink to="/projects" className="brand">NetForge</NavLink>
        <nav>
          <NavLink to="/projects">Projects</NavLink>
          <NavLink to="/datasets">Datasets</NavLink>
          <NavLink to="/endpoints">Endpoints</NavLink>
          <a href="/api/docs/" target="_blank" rel="noreferrer">API</a>
        </nav>
        <div className="spacer" />
        {user && (
          <span className="user">
            <WorkerStatusBadge />
            <UsageSummary />
            <NavLink to="/account" title="your account and API tokens">{user.username}</NavLink>
            <button className="link" onClick={() => void logout()}>Log out</button>
          </span>
        )}
      </header>
      <main className="content">
        <Outlet />
      </main>
    </div>
  );
}
