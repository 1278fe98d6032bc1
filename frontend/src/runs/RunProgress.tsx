// A run's progress bar: epoch and step against the totals, throughput and the time left, from the
// live points (re-rendered a few times a second, not on every point).
import { useEffect, useRef, useState } from "react";
import type { Run } from "../api/types";
import { formatDuration } from "../charts/chart";
import type { SeriesStore } from "../charts/series";
import { estimateProgress, type ProgressEstimate } from "./progress";
import { durationSeconds } from "./runInfo";

// Re-rendered a few times a second at most, whatever the rate of points.
const PROGRESS_INTERVAL_MS = 250;

export function ProgressBar({ store, run }: { store: SeriesStore; run: Run }) {
  const [estimate, setEstimate] = useState<ProgressEstimate>(() => estimateProgress(store, run));
  const runRef = useRef(run);
  runRef.current = run;

  useEffect(() => {
    setEstimate(estimateProgress(store, runRef.current));
  }, [store, run]);

  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | null = null;
    const unsubscribe = store.subscribe(() => {
      if (timer) return;
      timer = setTimeout(() => {
        timer = null;
        setEstimate(estimateProgress(store, runRef.current));
      }, PROGRESS_INTERVAL_MS);
    });
    return () => {
      unsubscribe();
      if (timer) clearTimeout(timer);
    };
  }, [store]);

  const percent = estimate.fraction === null ? null : Math.round(estimate.fraction * 1000) / 10;
  const parts = [
    `epoch ${formatEpoch(estimate.epoch)}${estimate.totalEpochs ? ` / ${estimate.totalEpochs}` : ""}`,
    `step ${estimate.step.toLocaleString()}${estimate.totalSteps ? ` / ${estimate.totalSteps.toLocaleString()}` : ""}`,
  ];
  if (estimate.samplesPerSecond) parts.push(`${Math.round(estimate.samplesPerSecond).toLocaleString()} samples/s`);
  if (estimate.etaSeconds !== null) parts.push(`ETA ${formatDuration(estimate.etaSeconds)}`);
  const elapsed = durationSeconds(run);
  if (elapsed !== null && !estimate.etaSeconds) parts.push(`took ${formatDuration(elapsed)}`);
  return (
    <div className="progress card" data-testid="progress" data-fraction={estimate.fraction ?? ""}>
      <div
        className={`progress-track ${run.state}`}
        role="progressbar"
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={percent ?? undefined}
        aria-label="Training progress"
      >
        <div className="progress-fill" style={{ width: `${percent ?? 0}%` }} />
      </div>
      <div className="progress-text">
        <span>{run.state === "queued" ? "waiting for a worker" : percent === null ? "" : `${percent}%`}</span>
        <span className="muted">{parts.join(" · ")}</span>
      </div>
    </div>
  );
}

function formatEpoch(epoch: number): string {
  return Number.isInteger(epoch) ? String(epoch) : epoch.toFixed(2);
}
