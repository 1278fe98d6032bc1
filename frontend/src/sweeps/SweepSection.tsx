// The train panel's "Sweep" section: instead of one run, try several settings. The panel's own fields
// are what every trial starts from; here the user picks what to vary (any numeric or choice training
// option, any node parameter of the graph) over which range or values, the sampler, the trial budget,
// how many train at once, and early pruning. `startSweep` sends it (POST /api/projects/<id>/sweeps).
import { useEffect, useState } from "react";
import { api } from "../api/client";
import type { EditorDocument, GraphVersion, OpSchema, SweepDetail } from "../api/types";
import { fetchCatalog } from "../editor/api";
import { Field } from "../runs/TrainFields";
import type { TrainingOptionsSchema } from "../runs/trainingOptions";
import { createSweep } from "./api";
import {
  buildParameters, buildSweepSettings, candidateParameters, rowFor, type Candidate, type ParameterRow, type Pruner,
  type Sampler, type SweepForm,
} from "./sweepLogic";
import "./sweeps.css";

export { defaultSweepForm } from "./sweepLogic";
export type { SweepForm } from "./sweepLogic";

interface SweepSectionProps {
  projectId: number;
  graphVersionId: number;
  schema: TrainingOptionsSchema;
  optimizer: string;
  /** The panel's training options as they would be sent: the suggested ranges sit around them. */
  hyperparameters: Record<string, unknown>;
  form: SweepForm;
  onChange(form: SweepForm): void;
  errors: Record<string, string>;
}

export function SweepSection({ projectId, graphVersionId, schema, optimizer, hyperparameters, form, onChange, errors }: SweepSectionProps) {
  const [graph, setGraph] = useState<{ document: EditorDocument | null; ops: OpSchema[] }>({ document: null, ops: [] });
  useEffect(() => {
    let cancelled = false;
    Promise.all([api<GraphVersion>(`/api/projects/${projectId}/versions/${graphVersionId}`), fetchCatalog()])
      .then(([version, catalog]) => !cancelled && setGraph({ document: version.editor_document, ops: catalog.ops }))
      .catch(() => undefined); // the training options can still be searched
    return () => {
      cancelled = true;
    };
  }, [projectId, graphVersionId]);

  const candidates = candidateParameters(schema, optimizer, hyperparameters, graph.document, graph.ops);
  const byName = new Map(candidates.map((candidate) => [candidate.name, candidate]));
  const unused = candidates.filter((candidate) => !form.rows.some((row) => row.name === candidate.name));
  const setRow = (index: number, change: Partial<ParameterRow>) =>
    onChange({ ...form, rows: form.rows.map((row, at) => (at === index ? { ...row, ...change } : row)) });

  return (
    <fieldset className="sweep-section" data-testid="sweep-section">
      <legend>Sweep</legend>
      <p className="field-hint">Each trial is a run with the settings above, changed by the values below.</p>
      {form.rows.map((row, index) => (
        <ParameterRowFields key={`${row.name}-${index}`} row={row} index={index} candidates={candidates}
          candidate={byName.get(row.name)} errors={errors} onChange={(change) => setRow(index, change)}
          onRemove={() => onChange({ ...form, rows: form.rows.filter((_, at) => at !== index) })} />
      ))}
      {errors.parameters && <span className="field-error" role="alert">{errors.parameters}</span>}
      <div className="parameter-row">
        <label>
          Add a parameter to vary
          <select data-testid="sweep-add-parameter" value="" onChange={(event) => {
            const candidate = byName.get(event.target.value);
            if (candidate) onChange({ ...form, rows: [...form.rows, rowFor(candidate)] });
          }}>
            <option value="">Choose…</option>
            {unused.map((candidate) => <option key={candidate.name} value={candidate.name}>{candidate.label} ({candidate.name})</option>)}
          </select>
        </label>
      </div>
      <Field label="Sampler" error={errors.sampler}>
        <select data-testid="sweep-sampler" value={form.sampler} onChange={(event) => onChange({ ...form, sampler: event.target.value as Sampler })}>
          <option value="tpe">TPE (model-based, Optuna)</option>
          <option value="random">Random</option>
          <option value="grid">Grid</option>
        </select>
      </Field>
      <Field label="Trials" error={errors.trial_budget} hint="the budget: trials in all">
        <input data-testid="sweep-trials" inputMode="numeric" value={form.trialBudget} onChange={(event) => onChange({ ...form, trialBudget: event.target.value })} />
      </Field>
      <Field label="At once" error={errors.parallelism} hint="trials training in parallel">
        <input data-testid="sweep-parallelism" inputMode="numeric" value={form.parallelism} onChange={(event) => onChange({ ...form, parallelism: event.target.value })} />
      </Field>
      <Field label="Early pruning" error={errors.pruner} hint="stops poor trials on the monitored metric, per epoch">
        <select data-testid="sweep-pruner" value={form.pruner} onChange={(event) => onChange({ ...form, pruner: event.target.value as Pruner })}>
          <option value="none">None</option>
          <option value="median">Median</option>
          <option value="successive_halving">Successive halving</option>
        </select>
      </Field>
    </fieldset>
  );
}

function ParameterRowFields({ row, index, candidates, candidate, errors, onChange, onRemove }: {
  row: ParameterRow; index: number; candidates: Candidate[]; candidate: Candidate | undefined; errors: Record<string, string>;
  onChange(change: Partial<ParameterRow>): void; onRemove(): void;
}) {
  const at = `parameters[${index}]`;
  const error = (field: string) => errors[`${at}.${field}`];
  const known = candidates.some((entry) => entry.name === row.name);
  return (
    <div className="parameter-row" data-testid={`sweep-parameter-${index}`}>
      <label>
        Parameter
        <select value={row.name} aria-invalid={!!error("name") || undefined} onChange={(event) => {
          const next = candidates.find((entry) => entry.name === event.target.value);
          if (next) onChange(rowFor(next));
        }}>
          {!known && <option value={row.name}>{row.name || "Choose…"}</option>}
          {candidates.map((entry) => <option key={entry.name} value={entry.name}>{entry.label} ({entry.name})</option>)}
        </select>
        {error("name") && <span className="field-error" role="alert">{error("name")}</span>}
      </label>
      <label>
        Values
        <select value={row.type} onChange={(event) => onChange({ type: event.target.value as ParameterRow["type"] })}>
          {candidate?.type !== "choice" && <option value={candidate?.type === "int" ? "int" : "float"}>range</option>}
          <option value="choice">choices</option>
        </select>
      </label>
      {row.type === "choice" ? (
        <label>
          Choices (comma-separated)
          <input value={row.choices} aria-invalid={!!error("choices") || undefined} onChange={(event) => onChange({ choices: event.target.value })} />
          {error("choices") && <span className="field-error" role="alert">{error("choices")}</span>}
        </label>
      ) : (
        <>
          <label>
            Low
            <input value={row.low} aria-invalid={!!error("low") || undefined} onChange={(event) => onChange({ low: event.target.value })} />
            {error("low") && <span className="field-error" role="alert">{error("low")}</span>}
          </label>
          <label>
            High
            <input value={row.high} aria-invalid={!!error("high") || undefined} onChange={(event) => onChange({ high: event.target.value })} />
            {error("high") && <span className="field-error" role="alert">{error("high")}</span>}
          </label>
          <label className="inline">
            <input type="checkbox" checked={row.log} onChange={(event) => onChange({ log: event.target.checked })} />
            Log scale
          </label>
        </>
      )}
      {errors[at] && <span className="field-error" role="alert">{errors[at]}</span>}
      <button type="button" onClick={onRemove} aria-label={`Remove ${row.name || "parameter"}`}>Remove</button>
    </div>
  );
}

/** The sweep's settings checked as the API will: the errors by field, or none and the sweep started. */
export function sweepErrors(form: SweepForm): Record<string, string> {
  return { ...buildParameters(form.rows).errors, ...buildSweepSettings(form).errors };
}

export function startSweep({ projectId, graphVersionId, dataset, hyperparameters, device, name, form }: {
  projectId: number; graphVersionId: number; dataset: number; hyperparameters: Record<string, unknown>; device: string; name: string;
  form: SweepForm;
}): Promise<SweepDetail> {
  const { settings } = buildSweepSettings(form);
  return createSweep(projectId, {
    graph_version: graphVersionId, dataset, hyperparameters, device: device as "cpu" | "gpu", name,
    parameters: buildParameters(form.rows).parameters, seed: 0, ...settings,
  });
}
