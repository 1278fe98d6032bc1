// GET /api/workers every `intervalMs` while mounted (the server caches it for a few seconds, so
// several views polling cost the workers one question).
import { useEffect, useState } from "react";
import { api, errorMessage } from "../api/client";
import type { WorkersStatus } from "./status";

export function useWorkerStatus(intervalMs: number): { status: WorkersStatus | null; error: string | null } {
  const [status, setStatus] = useState<WorkersStatus | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const poll = () => {
      api<WorkersStatus>("/api/workers")
        .then((answer) => {
          if (stopped) return;
          setStatus(answer);
          setError(null);
        })
        .catch((caught) => !stopped && setError(errorMessage(caught)))
        .finally(() => {
          if (!stopped) timer = setTimeout(poll, intervalMs);
        });
    };
    poll();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [intervalMs]);
  return { status, error };
}
