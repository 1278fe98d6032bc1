// The run page's "Layers" view: the run's graph, read-only, each node coloured by a chosen
// statistic with a sparkline of it, warnings on the nodes that cause them, and on click the node's
// histograms over time. Replayed from the record (GET /api/runs/<id>/layer-stats), then live.
import { applyNodeChanges, Background, Controls, ReactFlow, ReactFlowProvider, type Node, type NodeChange } from "@xyflow/react";
import { useCallback, useEffect, useMemo, useState } from "react";
import { errorMessage } from "../api/client";
import { freezePatterns, isFrozen } from "../runs/frozen";
import type { EditorDocument, Run } from "../api/types";
import { fetchLayerStats, fetchNodeSamples, fetchRunGraph } from "./api";
import type { LayerStatsFeed } from "./feed";
import { Heatmap } from "./Heatmap";
import { canvasGraph } from "./layout";
import { LayerNode, SPARK_HEIGHT, SPARK_WIDTH, type LayerNodeView } from "./LayerNode";
import {
  formatValue, latestValues, mergeSamples, nodeColors, nodeWarnings, seriesOf, sparklinePath, STATISTICS,
  type LayerSample, type NanSource, type NodeSample, type StatisticKey,
} from "./stats";
import "./layerstats.css";

const nodeTypes = { layer: LayerNode };

export function LayersView({ run, feed }: { run: Run; feed: LayerStatsFeed }) {
  const [samples, setSamples] = useState<LayerSample[]>([]);
  const [nan, setNan] = useState<NanSource | null>(null);
  const [statNodes, setStatNodes] = useState<string[]>([]);
  const [document, setDocument] = useState<EditorDocument | null>(null);
  const [statistic, setStatistic] = useState<StatisticKey>("grad_norm");
  const [selected, setSelected] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loaded, setLoaded] = useState(false);

  useEffect(() => {
    let cancelled = false;
    fetchRunGraph(run.project, run.graph_version)
      .then((version) => { if (!cancelled) setDocument(version.editor_document); })
      .catch(() => { if (!cancelled) setDocument(null); }); // the column layout of the statistics' nodes
    return () => { cancelled = true; };
  }, [run.project, run.graph_version]);

  // The record, again when the run finishes (the replay then has every sample, thinned evenly).
  const finished = !["queued", "running"].includes(run.state);
  useEffect(() => {
    let cancelled = false;
    fetchLayerStats(run.id)
      .then((history) => {
        if (cancelled) return;
        setSamples((current) => mergeSamples(history.samples, current));
        setNan((current) => current ?? history.nan);
        setStatNodes((current) => [...new Set([...history.nodes, ...current])]);
        setError(null);
        setLoaded(true);
      })
      .catch((caught) => { if (!cancelled) setError(errorMessage(caught)); });
    return () => { cancelled = true; };
  }, [run.id, finished]);

  useEffect(() => feed.subscribe((incoming) => {
    setSamples((current) => mergeSamples(current, incoming));
    const found = incoming.find((sample) => sample.nan)?.nan;
    if (found) setNan((current) => current ?? found);
    setStatNodes((current) => {
      const names = new Set(current);
      for (const sample of incoming) for (const id of Object.keys(sample.nodes)) names.add(id);
      return names.size === current.length ? current : [...names];
    });
  }), [feed]);

  const graph = useMemo(() => canvasGraph(document, statNodes), [document, statNodes]);
  // A fine-tuning run's frozen nodes (its freeze option), marked on the canvas.
  const frozen = useMemo(() => freezePatterns(run.hyperparameters), [run.hyperparameters]);
  const scale = STATISTICS.find((entry) => entry.key === statistic)?.scale;
  const nodes = useMemo(() => {
    const ids = graph.nodes.map((node) => node.id);
    const colors = nodeColors(samples, ids, statistic);
    const values = latestValues(samples, ids, statistic);
    return graph.nodes.map((node) => {
      const series = seriesOf(samples, node.id, statistic);
      const data: LayerNodeView = {
        ...node.data,
        color: colors.get(node.id),
        value: values.has(node.id) ? formatValue(values.get(node.id)) : undefined,
        spark: sparklinePath(series, SPARK_WIDTH, SPARK_HEIGHT, scale === "log") || undefined,
        warnings: nodeWarnings(samples, nan, node.id),
        frozen: isFrozen(node.id, frozen),
      };
      return { ...node, data, selected: node.id === selected };
    });
  }, [graph, samples, statistic, scale, nan, selected, frozen]);

  // The nodes are rebuilt with every sample: React Flow's measurements (applied by onNodesChange) are
  // carried over to them, or a rebuilt node would lose its size and stay hidden until measured again.
  const [measured, setMeasured] = useState<Record<string, Node["measured"]>>({});
  const onNodesChange = useCallback((changes: NodeChange[]) => {
    const sizes = changes.filter((change) => change.type === "dimensions");
    if (!sizes.length) return;
    setMeasured((current) => {
      const next = { ...current };
      for (const node of applyNodeChanges(sizes, nodes as Node[])) if (node.measured) next[node.id] = node.measured;
      return next;
    });
  }, [nodes]);
  const shown = useMemo(() => nodes.map((node) => (measured[node.id] ? { ...node, measured: measured[node.id] } : node)),
    [nodes, measured]);

  const nanNode = nan ? (nan.block ?? nan.node) : null;
  return (
    <section className="card layers-view" data-testid="layers-view">
      <header className="layers-header">
        <h2>Layers</h2>
        <label>
          Colour by{" "}
          <select value={statistic} onChange={(event) => setStatistic(event.target.value as StatisticKey)} data-testid="layer-statistic">
            {STATISTICS.map((entry) => <option key={entry.key} value={entry.key}>{entry.label}</option>)}
          </select>
        </label>
        <span className="muted">{samples.length ? `${samples.length} samples, steps ${samples[0].step}–${samples[samples.length - 1].step}` : ""}</span>
      </header>
      {nan && (
        <div className="error-box" role="alert" data-testid="layer-nan-warning">
          <strong>NaN at step {nan.step}:</strong>{" "}
          {nan.where === "input" ? `the data fed to input '${nan.input}' has NaN or Inf values`
            : nanNode ? `first produced by node '${nanNode}'${nan.where === "gradient" ? " (its gradient)" : ""}`
            : "the loss, with every node's output finite on this worker"}
        </div>
      )}
      {error && <div className="error-box" role="alert">Could not load the layer statistics: {error}</div>}
      {loaded && !samples.length && !error && (
        <p className="muted">{finished ? "This run has no layer statistics." : "The first statistics arrive after about a hundred training steps."}</p>
      )}
      <div className="layers-canvas">
        <ReactFlowProvider>
          <ReactFlow nodes={shown} edges={graph.edges} nodeTypes={nodeTypes} fitView minZoom={0.05} onNodesChange={onNodesChange}
            nodesDraggable={false} nodesConnectable={false} edgesFocusable={false} elementsSelectable
            onNodeClick={(_, node) => setSelected(node.id)} proOptions={{ hideAttribution: true }}>
            <Background />
            <Controls showInteractive={false} />
          </ReactFlow>
        </ReactFlowProvider>
      </div>
      {selected && <NodeDetails runId={run.id} nodeId={selected} samples={samples} live={!finished} onClose={() => setSelected(null)} />}
    </section>
  );
}

function NodeDetails({ runId, nodeId, samples, live, onClose }: { runId: number; nodeId: string; samples: LayerSample[]; live: boolean; onClose(): void }) {
  const [history, setHistory] = useState<{ edges: number[]; samples: NodeSample[] } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const latestStep = samples.length ? samples[samples.length - 1].step : 0;
  useEffect(() => {
    let cancelled = false;
    fetchNodeSamples(runId, nodeId)
      .then((body) => { if (!cancelled) { setHistory(body); setError(null); } })
      .catch((caught) => { if (!cancelled) setError(errorMessage(caught)); });
    return () => { cancelled = true; };
    // Live: fetched again as samples arrive, so the heatmap grows with the run.
  }, [runId, nodeId, live ? latestStep : 0]);
  const latest = [...samples].reverse().find((sample) => sample.nodes[nodeId])?.nodes[nodeId];
  return (
    <div className="layers-details" data-testid="layer-details">
      <header>
        <h3>{nodeId}</h3>
        <button className="link" onClick={onClose}>close</button>
      </header>
      {latest && (
        <dl className="layers-facts">
          {STATISTICS.map((entry) => latest[entry.key] !== undefined && (
            <div key={entry.key}><dt>{entry.label}</dt><dd className="mono">{formatValue(latest[entry.key] as number | null)}</dd></div>
          ))}
        </dl>
      )}
      {error && <p className="error-box">{error}</p>}
      {history && <Heatmap samples={history.samples} edges={history.edges} />}
    </div>
  );
}
