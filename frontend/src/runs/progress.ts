// How far a run is and how long it has left, from its points (the live view has them already) and
// the run's configured epochs.
import type { SeriesStore } from "../charts/series";

export interface ProgressEstimate {
  /** Epochs done, fractional inside an epoch. */
  epoch: number;
  totalEpochs: number | null;
  step: number;
  totalSteps: number | null;
  /** 0 to 1, or null when the total is unknown. */
  fraction: number | null;
  samplesPerSecond: number | null;
  etaSeconds: number | null;
}

// Enough batches to even out a noisy step time, recent enough to follow a change of speed.
const RATE_WINDOW = 50;

export function estimateProgress(
  store: SeriesStore,
  run: { state: string; hyperparameters: Record<string, unknown>; epochs_completed: number; steps_completed: number },
): ProgressEstimate {
  const totalEpochs = typeof run.hyperparameters.epochs === "number" ? run.hyperparameters.epochs : null;
  const batchSize = typeof run.hyperparameters.batch_size === "number" ? run.hyperparameters.batch_size : null;
  const loss = store.get("loss");
  const latest = loss?.last();
  const epoch = Math.max(latest?.epoch ?? 0, run.epochs_completed);
  const step = Math.max(latest?.step ?? 0, run.steps_completed);
  const stepsPerEpoch = latest && latest.epoch > 0 ? latest.step / latest.epoch : null;
  const totalSteps = stepsPerEpoch && totalEpochs ? Math.round(stepsPerEpoch * totalEpochs) : null;
  let fraction = totalEpochs ? Math.min(1, epoch / totalEpochs) : null;
  if (run.state === "succeeded") fraction = 1;

  let stepsPerSecond: number | null = null;
  if (loss && loss.length >= 2) {
    const last = loss.length - 1;
    const first = Math.max(0, last - RATE_WINDOW);
    const seconds = loss.wallTimes[last] - loss.wallTimes[first];
    const steps = loss.steps[last] - loss.steps[first];
    if (seconds > 0 && steps > 0) stepsPerSecond = steps / seconds;
  }
  const recorded = store.get("samples_per_second")?.last()?.value;
  const samplesPerSecond = stepsPerSecond && batchSize
    ? stepsPerSecond * batchSize
    : recorded !== undefined && Number.isFinite(recorded) ? recorded : null;
  const active = run.state === "running";
  const etaSeconds = active && stepsPerSecond && totalSteps !== null ? Math.max(0, (totalSteps - step) / stepsPerSecond) : null;
  return { epoch, totalEpochs, step, totalSteps, fraction, samplesPerSecond, etaSeconds };
}
