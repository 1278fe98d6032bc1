// `make bench`: the work behind one redraw of a run page's loss chart with 100,000 live points
// (smoothing, merging the per-batch curve with its per-epoch and validation series) and one
// WebSocket message's worth of appends, against the 16.7 ms of a 60 Hz frame. uPlot's own canvas
// drawing comes on top in the browser; it is what uPlot is built to do fast.
import { bench, describe } from "vitest";

import { MetricChartSource } from "../runs/runCharts";
import { SeriesStore } from "./series";

const POINTS = 100_000;
const STEPS_PER_EPOCH = 1_000;

function liveRun(): SeriesStore {
  const store = new SeriesStore();
  const points = [];
  for (let step = 1; step <= POINTS; step++) {
    const epoch = step / STEPS_PER_EPOCH;
    points.push({ seq: points.length + 1, name: "loss", step, epoch, value: 1 / Math.sqrt(step) + 0.05 * Math.sin(step), wall_time: step / 1e3 });
    if (step % STEPS_PER_EPOCH === 0) {
      for (const name of ["epoch_loss", "val_loss"]) {
        points.push({ seq: points.length + 1, name, step, epoch, value: 1 / Math.sqrt(step), wall_time: step / 1e3 });
      }
    }
  }
  store.appendPoints(points);
  return store;
}

describe(`loss chart with ${POINTS.toLocaleString("en")} points (frame budget 16.7 ms)`, () => {
  const store = liveRun();
  const raw = new MetricChartSource(store, "loss", { xAxis: "step", smoothing: 0, logScale: false });
  const smoothed = new MetricChartSource(store, "loss", { xAxis: "step", smoothing: 0.6, logScale: false });
  const byTime = new MetricChartSource(store, "loss", { xAxis: "wall", smoothing: 0.6, logScale: false });
  const logScale = new MetricChartSource(store, "loss", { xAxis: "step", smoothing: 0.6, logScale: true });
  const appended = liveRun();
  let step = POINTS;

  bench("redraw data, no smoothing", () => { raw.frame(); });
  bench("redraw data, smoothing 0.6", () => { smoothed.frame(); });
  bench("redraw data, smoothing 0.6, x by time", () => { byTime.frame(); });
  bench("redraw data, smoothing 0.6, log scale", () => { logScale.frame(); });
  bench("append one live message (100 points)", () => {
    const points = [];
    for (let i = 0; i < 100; i++) {
      step += 1;
      points.push({ seq: step * 2, name: "loss", step, epoch: step / STEPS_PER_EPOCH, value: 1 / Math.sqrt(step), wall_time: step / 1e3 });
    }
    appended.appendPoints(points);
  });
});
