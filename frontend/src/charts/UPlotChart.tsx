// A uPlot chart fed by a ChartSource. React renders the container once; new points reach uPlot via
// setData at most once per animation frame, without a React render, so 100,000 points stay smooth.
import { useEffect, useRef } from "react";
import uPlot from "uplot";
import { formatDuration, formatTick, yAxisSize, type ChartFrame, type ChartLine, type ChartSource } from "./chart";
import "./charts.css";

export interface UPlotChartProps {
  source: ChartSource;
  title?: string;
  xLabel: string;
  /** "duration": x is seconds, labelled 1m 20s. */
  xFormat?: "number" | "duration";
  logScale?: boolean;
  height?: number;
  testId?: string;
  /** The attribute that carries the frame's count, e.g. data-points. */
  countAttribute?: string;
  /** Charts with the same key move their cursors together. */
  syncKey?: string;
  emptyText?: string;
}

export function UPlotChart({
  source, title, xLabel, xFormat = "number", logScale = false, height = 240, testId,
  countAttribute = "data-points", syncKey, emptyText = "No points yet",
}: UPlotChartProps) {
  const containerRef = useRef<HTMLDivElement>(null);
  const plotRef = useRef<HTMLDivElement>(null);
  const emptyRef = useRef<HTMLDivElement>(null);

  useEffect(() => {
    const container = containerRef.current!;
    const plotElement = plotRef.current!;
    let chart: uPlot | null = null;
    let linesKey = "";
    let pending = 0;
    let zoomed = false;

    const width = () => Math.max(200, plotElement.clientWidth || container.clientWidth || 600);

    const draw = () => {
      pending = 0;
      try {
        const frame = source.frame();
        container.setAttribute(countAttribute, String(frame.count));
        if (emptyRef.current) {
          emptyRef.current.hidden = frame.data[0].length > 0;
          emptyRef.current.textContent = emptyText;
        }
        const key = frame.lines.map(lineKey).join("|");
        if (!chart || key !== linesKey) {
          chart?.destroy();
          chart = new uPlot(chartOptions(frame, { width: width(), height, xLabel, xFormat, logScale, syncKey,
            onZoom: (value) => { zoomed = value; } }), frame.data, plotElement);
          linesKey = key;
        } else {
          chart.setData(frame.data, !zoomed);
        }
      } catch (error) {
        // Keep the page and the other charts alive; say what went wrong where the curve would be.
        console.error(error);
        if (emptyRef.current) {
          emptyRef.current.hidden = false;
          emptyRef.current.textContent = `This chart could not be drawn: ${error instanceof Error ? error.message : String(error)}`;
        }
      }
    };
    const schedule = () => {
      if (!pending) pending = requestAnimationFrame(draw);
    };

    draw();
    const unsubscribe = source.subscribe(schedule);
    const resize = new ResizeObserver(() => chart?.setSize({ width: width(), height }));
    resize.observe(plotElement);
    return () => {
      unsubscribe();
      if (pending) cancelAnimationFrame(pending);
      resize.disconnect();
      chart?.destroy();
    };
  }, [source, height, xLabel, xFormat, logScale, syncKey, countAttribute, emptyText]);

  return (
    <div className="chart" ref={containerRef} data-testid={testId}>
      {title && <div className="chart-title">{title}</div>}
      <div className="chart-plot" ref={plotRef} style={{ minHeight: height }} />
      <div className="chart-empty muted" ref={emptyRef}>{emptyText}</div>
    </div>
  );
}

function lineKey(line: ChartLine): string {
  return `${line.label}/${line.color}/${line.width ?? ""}/${line.dash?.join(",") ?? ""}/${line.faint ? 1 : 0}`;
}

interface Layout {
  width: number;
  height: number;
  xLabel: string;
  xFormat: "number" | "duration";
  logScale: boolean;
  syncKey?: string;
  onZoom(zoomed: boolean): void;
}

function chartOptions(frame: ChartFrame, layout: Layout): uPlot.Options {
  const xValues = layout.xFormat === "duration"
    ? (_: uPlot, ticks: number[]) => ticks.map(formatDuration)
    : undefined;
  return {
    width: layout.width,
    height: layout.height,
    scales: {
      x: { time: false },
      y: layout.logScale ? { distr: 3, log: 10 } : { auto: true },
    },
    axes: [
      { label: layout.xLabel, values: xValues, labelSize: 20, size: 36 },
      { values: (_: uPlot, ticks: number[]) => ticks.map(formatTick), size: (_: uPlot, ticks: string[]) => yAxisSize(ticks) },
    ],
    legend: { live: true },
    cursor: {
      sync: layout.syncKey ? { key: layout.syncKey } : undefined,
      drag: { x: true, y: false },
    },
    hooks: {
      setSelect: [(chart) => { if (chart.select.width > 0) layout.onZoom(true); }],
      ready: [(chart) => chart.over.addEventListener("dblclick", () => layout.onZoom(false))],
    },
    series: [
      { label: layout.xLabel, value: (_, value) => (value == null ? "" : layout.xFormat === "duration" ? formatDuration(value) : String(+value.toPrecision(6))) },
      ...frame.lines.map((line): uPlot.Series => ({
        label: line.label,
        stroke: line.faint ? line.color + "40" : line.color,
        width: line.width ?? (line.faint ? 1 : 1.6),
        dash: line.dash,
        spanGaps: true,
        points: line.faint ? { show: false } : undefined,
        value: (_, value) => (value == null ? "" : String(+value.toPrecision(5))),
        class: line.faint ? "faint-series" : undefined,
      })),
    ],
  };
}
