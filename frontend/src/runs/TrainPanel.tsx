// The training settings the editor shows in its "Train" dialog (the dialog, its title and Escape are
// the editor's). Its fields are generated from the engine's training-option schema, opened with the
// settings the graph's template recommends (or a run's, to rerun it); it checks them as the API will (same fields, same
// messages), starts a run (POST /api/projects/<id>/runs) and shows the server's complaints too.
import { useEffect, useState, type FormEvent } from "react";
import { useNavigate } from "react-router-dom";
import { api, errorMessage } from "../api/client";
import type { BuiltinDataset, Dataset, Run } from "../api/types";
import { OptimizerFieldset, ScheduleFieldset } from "./OptimizerFieldsets";
import { formFromRun, type RunSettings } from "./rerunForm";
import { rememberTrainForm, withRememberedSettings } from "./lastTrainSettings";
import { parseTags } from "./RunAnnotations";
import { buildRequest, defaultForm, fieldErrors, stepsPerEpoch, type Recommended, type TrainForm } from "./trainConfig";
import { Field } from "./TrainFields";
import { cachedTrainPanelData, fetchRecommended, prefetchTrainPanelData, rememberDataset, type DatasetChoices, type TrainPanelData } from "./trainPanelData";
import { AdvancedFieldset, AugmentationFieldset, EarlyStoppingFieldset, FineTuningFieldset, RunFieldset, TopLevelField } from "./TrainSections";
import { defaultSweepForm, startSweep, SweepSection, sweepErrors, type SweepForm } from "../sweeps/SweepSection";
import "./runs.css";

export { prefetchTrainPanelData } from "./trainPanelData";

export interface TrainPanelProps {
  projectId: number;
  /** The saved graph version to train (the editor saves first when the canvas has changes). */
  graphVersionId: number;
  /** The dataset the graph's input nodes are bound to, preselected when known. */
  datasetId?: number | null;
  /** Told the chosen dataset ("<id>", or "builtin:<name>" until a built-in is added) whenever it changes. */
  onDatasetChange?(dataset: string): void;
  /** A run's settings to open with ("Rerun with changes") instead of the template's recommendations. */
  initialSettings?: RunSettings;
  onStarted(run: Run): void;
  onClose(): void;
}

const BUILTIN_PREFIX = "builtin:";

/** The bound dataset, else the template's recommended one (the project's copy, or the built-in to add
 *  for the project: another project's copy may have other options, e.g. digits as rows where this
 *  template wants images), else the first. */
function initialDataset(datasetId: number | null | undefined, choices: DatasetChoices, recommended: string | undefined, projectId: number): string {
  if (datasetId) return String(datasetId);
  if (recommended) {
    const copies = choices.datasets.filter((dataset) => dataset.kind === "builtin" && dataset.builtin_name === recommended);
    const copy = copies.find((dataset) => dataset.project === projectId);
    if (copy) return String(copy.id);
    if (choices.builtins.some((builtin) => builtin.name === recommended)) return BUILTIN_PREFIX + recommended;
    if (copies[0]) return String(copies[0].id);
  }
  if (choices.datasets[0]) return String(choices.datasets[0].id);
  return choices.builtins[0] ? BUILTIN_PREFIX + choices.builtins[0].name : "";
}

export function TrainPanel({ projectId, graphVersionId, datasetId, onDatasetChange, initialSettings, onStarted, onClose }: TrainPanelProps) {
  const [data, setData] = useState<TrainPanelData | null>(null);
  const [form, setForm] = useState<TrainForm | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [submitting, setSubmitting] = useState(false);
  // Sweep mode: several runs (trials) over a search space instead of one run; null for one run.
  const [sweep, setSweep] = useState<SweepForm | null>(null);
  const navigate = useNavigate();

  useEffect(() => {
    let cancelled = false;
    // The form appears once the schema and the recommendation are in, so nothing typed is overwritten.
    const fromCache = cachedTrainPanelData !== null;
    const loaded = cachedTrainPanelData ? Promise.resolve(cachedTrainPanelData) : prefetchTrainPanelData();
    Promise.all([loaded, initialSettings ? null : fetchRecommended(projectId, graphVersionId)])
      .then(([panelData, recommended]: [TrainPanelData, Recommended | null]) => {
        if (cancelled) return;
        setData(panelData);
        // Opened again in this project: the settings it last trained with, the dataset too while it is still offered.
        const offered = (dataset: string) => panelData.datasets.some((candidate) => String(candidate.id) === dataset)
          || panelData.builtins.some((builtin) => BUILTIN_PREFIX + builtin.name === dataset);
        setForm(initialSettings ? formFromRun(panelData.schema, initialSettings)
          : withRememberedSettings(projectId, defaultForm(panelData.schema, initialDataset(datasetId, panelData, recommended?.dataset, projectId), recommended), offered));
        if (fromCache) prefetchTrainPanelData().then((fresh) => !cancelled && setData(fresh)).catch(() => undefined);
      })
      .catch((error) => !cancelled && setLoadError(errorMessage(error)));
    return () => {
      cancelled = true;
    };
  }, [projectId, graphVersionId, datasetId, initialSettings]);

  const chosenDataset = form?.dataset;
  useEffect(() => {
    if (chosenDataset !== undefined) onDatasetChange?.(chosenDataset);
  }, [chosenDataset, onDatasetChange]);

  if (!data || !form) {
    return (
      <form className="train-panel" aria-label="Training settings" aria-busy={!loadError}>
        {loadError ? <div className="error-box" role="alert">Could not load the training options: {loadError}</div> : <p>Loading…</p>}
        <div className="actions"><button type="button" onClick={onClose}>Cancel</button></div>
      </form>
    );
  }
  const { schema, datasets, builtins } = data;
  const update = (change: (current: TrainForm) => TrainForm) => setForm((current) => (current ? change(current) : current));
  const selected = datasets.find((dataset) => String(dataset.id) === form.dataset) ?? null;
  const selectedBuiltin = form.dataset.startsWith(BUILTIN_PREFIX)
    ? builtins.find((builtin) => BUILTIN_PREFIX + builtin.name === form.dataset) ?? null
    : null;
  const rows = datasetRows(selected);
  const task = (selected?.schema?.task as string | undefined) ?? selectedBuiltin?.task ?? "classification";
  const perEpoch = stepsPerEpoch(rows, Number(form.options.validation_fraction), Number(form.options.batch_size));
  const epochs = Number(form.options.epochs) || 0;
  // The chosen built-in stays offered even where the user has a copy (of another project, say).
  const unaddedBuiltins = builtins.filter((builtin) => BUILTIN_PREFIX + builtin.name === form.dataset
    || !datasets.some((dataset) => dataset.kind === "builtin" && dataset.builtin_name === builtin.name));
  const hints: Record<string, string | undefined> = {
    batch_size: perEpoch ? `${perEpoch} step${perEpoch === 1 ? "" : "s"} per epoch` : undefined,
    epochs: perEpoch && epochs ? `${(perEpoch * epochs).toLocaleString()} steps` : undefined,
    validation_fraction: "fraction held out",
  };
  const sectionProps = { schema, form, errors, setForm: update };

  async function submit(event: FormEvent) {
    event.preventDefault();
    if (!form) return;
    const request = buildRequest(schema, form, rows);
    const problems = { ...request.errors, ...(form.dataset ? {} : { dataset: "Choose a dataset" }), ...(sweep ? sweepErrors(sweep) : {}) };
    setErrors(problems);
    if (Object.keys(problems).length) return;
    setSubmitting(true);
    try {
      let dataset = Number(form.dataset);
      if (form.dataset.startsWith(BUILTIN_PREFIX)) {
        const created = await api<Dataset>("/api/datasets", {
          method: "POST", json: { builtin: form.dataset.slice(BUILTIN_PREFIX.length), project: projectId },
        }).catch((error) => {
          throw Object.assign(error, { field: "dataset" });
        });
        dataset = created.id;
        rememberDataset(created);
        setData((current) => (current ? { ...current, datasets: [created, ...current.datasets] } : current));
        update((current) => ({ ...current, dataset: String(created.id) }));
      }
      if (sweep) {
        const started = await startSweep({ projectId, graphVersionId, dataset, hyperparameters: request.hyperparameters,
          device: request.device, name: form.name.trim(), form: sweep });
        rememberTrainForm(projectId, { ...form, dataset: String(dataset) });
        navigate(`/sweeps/${started.id}`);
        return;
      }
      const run = await api<Run>(`/api/projects/${projectId}/runs`, {
        method: "POST",
        json: {
          graph_version: graphVersionId, dataset, hyperparameters: request.hyperparameters, device: request.device,
          workers: request.workers, name: form.name.trim(), tags: parseTags(form.tags),
        },
      });
      rememberTrainForm(projectId, { ...form, dataset: String(dataset) });
      onStarted(run);
    } catch (error) {
      const placed = fieldErrors(error);
      if ((error as { field?: string }).field === "dataset" && placed.form) setErrors({ dataset: placed.form });
      else setErrors(placed);
    } finally {
      setSubmitting(false);
    }
  }

  const unplaced = Object.entries(errors).filter(([key]) => !isPlaced(key));
  return (
    <form className="train-panel" aria-label="Training settings" onSubmit={submit} noValidate>
      <fieldset>
        <legend>Data</legend>
        <Field label="Dataset" error={errors.dataset} wide hint={datasetHint(selected, selectedBuiltin, rows)}>
          <select data-testid="train-dataset" value={form.dataset} aria-label="Dataset" aria-invalid={!!errors.dataset || undefined}
            onChange={(event) => update((current) => ({ ...current, dataset: event.target.value }))}>
            {!form.dataset && <option value="">Choose a dataset</option>}
            {datasets.length > 0 && (
              <optgroup label="Your datasets">
                {datasets.map((dataset) => <option key={dataset.id} value={String(dataset.id)}>{dataset.name}</option>)}
              </optgroup>
            )}
            {unaddedBuiltins.length > 0 && (
              <optgroup label="Built-in (added on start)">
                {unaddedBuiltins.map((builtin) => <option key={builtin.name} value={BUILTIN_PREFIX + builtin.name}>{builtin.name}</option>)}
              </optgroup>
            )}
          </select>
        </Field>
        {schema.options.filter((option) => option.group === "data").map((option) => (
          <TopLevelField key={option.name} option={option} form={form} errors={errors} setForm={update} hint={hints[option.name]} />
        ))}
      </fieldset>
      <OptimizerFieldset {...sectionProps} perEpoch={perEpoch} epochs={epochs} />
      <ScheduleFieldset {...sectionProps} perEpoch={perEpoch} epochs={epochs} />
      <EarlyStoppingFieldset {...sectionProps} task={task} />
      <RunFieldset {...sectionProps} />
      <AugmentationFieldset {...sectionProps} />
      <FineTuningFieldset {...sectionProps} />
      <AdvancedFieldset {...sectionProps} />
      <label className="inline sweep-toggle">
        <input type="checkbox" data-testid="train-sweep-mode" checked={sweep !== null} onChange={(event) => setSweep(event.target.checked ? defaultSweepForm() : null)} />
        Sweep: try several settings as a group of runs
      </label>
      {sweep && (
        <SweepSection projectId={projectId} graphVersionId={graphVersionId} schema={schema} optimizer={form.optimizer}
          hyperparameters={buildRequest(schema, form, rows).hyperparameters} form={sweep} onChange={setSweep} errors={errors} />
      )}

      {unplaced.map(([key, message]) => <div key={key} className="error-box" role="alert">{message}</div>)}
      {Object.keys(errors).length > 0 && unplaced.length === 0 && (
        <div className="error-box" role="alert">Some values are not accepted; see the marked fields.</div>
      )}
      <div className="actions">
        <button type="button" onClick={onClose}>Cancel</button>
        <button type="submit" className="primary" disabled={submitting}>{submitting ? "Starting…" : sweep ? "Start sweep" : "Start training"}</button>
      </div>
    </form>
  );
}

/** Whether a field's error shows next to a field of the form (every option's path does; "form" and other strangers do not). */
function isPlaced(key: string): boolean {
  return key !== "form" && key !== "" && !key.startsWith("metrics");
}

function datasetRows(dataset: Dataset | null): number | null {
  if (!dataset) return null;
  if (typeof dataset.rows === "number" && dataset.rows > 0) return dataset.rows;
  const fromSchema = dataset.schema?.rows;
  return typeof fromSchema === "number" ? fromSchema : null;
}

function datasetHint(dataset: Dataset | null, builtin: BuiltinDataset | null, rows: number | null): string | undefined {
  if (builtin) return builtin.description;
  if (!dataset) return undefined;
  const task = dataset.schema?.task;
  return [rows !== null ? `${rows.toLocaleString()} rows` : null, typeof task === "string" ? task : null].filter(Boolean).join(" · ") || undefined;
}
