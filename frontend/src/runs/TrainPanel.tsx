// The training settings the editor shows in its "Train" dialog (the dialog, its title and Escape are
// the editor's): dataset and split, optimizer and its options, learning-rate
// schedule, batch size, epochs, early stopping, device and workers, name and tags. It starts a run
// (POST /api/projects/<id>/runs) and shows the server's complaints next to the fields they name.
import { useEffect, useMemo, useState, type FormEvent, type ReactNode } from "react";
import { api, apiAll, errorMessage } from "../api/client";
import type { BuiltinDataset, Dataset, Run } from "../api/types";
import { parseTags } from "./RunAnnotations";
import {
  buildHyperparameters, defaultForm, fieldErrors, FormError, METRICS_BY_TASK, OPTIMIZERS, proposedValue, SCHEDULES,
  stepsPerEpoch, STRATEGIES, type NumberOption, type TrainForm,
} from "./trainConfig";
import "./runs.css";

export interface TrainPanelProps {
  projectId: number;
  /** The saved graph version to train (the editor saves first when the canvas has changes). */
  graphVersionId: number;
  /** The dataset the graph's input nodes are bound to, preselected when known. */
  datasetId?: number | null;
  onStarted(run: Run): void;
  onClose(): void;
}

const BUILTIN_PREFIX = "builtin:";

interface DatasetChoices {
  datasets: Dataset[];
  builtins: BuiltinDataset[];
}

// The last lists loaded, so the panel opens with its choices in place; they are refreshed on every open.
let cached: DatasetChoices | null = null;
let pending: Promise<DatasetChoices> | null = null;

/** Load the dataset choices ahead of opening the panel (the editor may call it when it mounts). */
export function prefetchTrainPanelData(): Promise<DatasetChoices> {
  pending ??= Promise.all([
    apiAll<Dataset>("/api/datasets"),
    api<{ results: BuiltinDataset[] }>("/api/datasets/builtin").then((body) => body.results).catch(() => []),
  ])
    .then(([datasets, builtins]) => (cached = { datasets, builtins }))
    .finally(() => {
      pending = null;
    });
  return pending;
}

function initialDataset(datasetId: number | null | undefined, choices: DatasetChoices | null): string {
  if (datasetId) return String(datasetId);
  if (!choices) return "";
  if (choices.datasets[0]) return String(choices.datasets[0].id);
  return choices.builtins[0] ? BUILTIN_PREFIX + choices.builtins[0].name : "";
}

export function TrainPanel({ projectId, graphVersionId, datasetId, onStarted, onClose }: TrainPanelProps) {
  const [datasets, setDatasets] = useState<Dataset[] | null>(() => cached?.datasets ?? null);
  const [builtins, setBuiltins] = useState<BuiltinDataset[]>(() => cached?.builtins ?? []);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [form, setForm] = useState<TrainForm>(() => defaultForm(initialDataset(datasetId, cached)));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [submitting, setSubmitting] = useState(false);

  useEffect(() => {
    let cancelled = false;
    prefetchTrainPanelData()
      .then((loaded) => {
        if (cancelled) return;
        setDatasets(loaded.datasets);
        setBuiltins(loaded.builtins);
        setForm((current) => (current.dataset ? current : { ...current, dataset: initialDataset(datasetId, loaded) }));
      })
      .catch((error) => {
        if (cancelled) return;
        setLoadError(errorMessage(error));
        setDatasets((current) => current ?? []);
      });
    return () => {
      cancelled = true;
    };
  }, [datasetId]);

  const selected = datasets?.find((dataset) => String(dataset.id) === form.dataset) ?? null;
  const selectedBuiltin = form.dataset.startsWith(BUILTIN_PREFIX)
    ? builtins.find((builtin) => BUILTIN_PREFIX + builtin.name === form.dataset) ?? null
    : null;
  const rows = datasetRows(selected);
  const task = (selected?.schema?.task as string | undefined) ?? selectedBuiltin?.task ?? "classification";
  const perEpoch = stepsPerEpoch(rows, Number(form.validationFraction), Number(form.batchSize));
  const epochs = Number(form.epochs) || 0;
  const monitors = useMemo(() => {
    const metrics = METRICS_BY_TASK[task] ?? [];
    return ["val_loss", ...metrics.map((metric) => `val_${metric}`), "loss", ...metrics];
  }, [task]);
  const unaddedBuiltins = builtins.filter((builtin) => !datasets?.some((dataset) => dataset.kind === "builtin" && dataset.builtin_name === builtin.name));

  const set = <K extends keyof TrainForm>(key: K, value: TrainForm[K]) => setForm((current) => ({ ...current, [key]: value }));

  function changeOptimizer(name: string) {
    setForm((current) => {
      const untouched = Number(current.learningRate) === OPTIMIZERS[current.optimizer]?.lr;
      return { ...current, optimizer: name, optimizerOptions: {}, learningRate: untouched ? String(OPTIMIZERS[name].lr) : current.learningRate };
    });
  }

  async function submit(event: FormEvent) {
    event.preventDefault();
    setErrors({});
    let hyperparameters: Record<string, unknown>;
    try {
      if (!form.dataset) throw new FormError("dataset", "Choose a dataset");
      hyperparameters = buildHyperparameters(form, rows);
    } catch (error) {
      setErrors(error instanceof FormError ? { [error.field]: error.message } : { form: errorMessage(error) });
      return;
    }
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
        setDatasets((current) => [created, ...(current ?? [])]);
        if (cached) cached = { ...cached, datasets: [created, ...cached.datasets] };
        setForm((current) => ({ ...current, dataset: String(created.id) }));
      }
      const run = await api<Run>(`/api/projects/${projectId}/runs`, {
        method: "POST",
        json: {
          graph_version: graphVersionId, dataset, hyperparameters, device: form.device,
          workers: Number(form.workers) || 1, name: form.name.trim(), tags: parseTags(form.tags),
        },
      });
      onStarted(run);
    } catch (error) {
      const placed = fieldErrors(error);
      if ((error as { field?: string }).field === "dataset" && placed.form) setErrors({ dataset: placed.form });
      else setErrors(placed);
    } finally {
      setSubmitting(false);
    }
  }

  const optimizer = OPTIMIZERS[form.optimizer];
  const schedule = SCHEDULES[form.schedule];
  const size = { epochs, perEpoch };
  return (
    <form className="train-panel" aria-label="Training settings" onSubmit={submit} noValidate>
      {loadError && <div className="error-box" role="alert">Could not load datasets: {loadError}</div>}

      <fieldset>
        <legend>Data</legend>
        <Field label="Dataset" error={errors.dataset} wide hint={datasetHint(selected, selectedBuiltin, rows)}>
          <select data-testid="train-dataset" value={form.dataset} onChange={(event) => set("dataset", event.target.value)}
            aria-invalid={!!errors.dataset || undefined} disabled={datasets === null}>
            {datasets === null && <option value={form.dataset}>Loading…</option>}
            {datasets !== null && !form.dataset && <option value="">Choose a dataset</option>}
            {datasets && datasets.length > 0 && (
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
        <Field label="Validation split" error={errors.validation_fraction} hint="fraction held out">
          <input type="number" min={0} max={0.9} step={0.05} value={form.validationFraction}
            onChange={(event) => set("validationFraction", event.target.value)} aria-invalid={!!errors.validation_fraction || undefined} />
        </Field>
        <Field label="Batch size" error={errors.batch_size} hint={perEpoch ? `${perEpoch} step${perEpoch === 1 ? "" : "s"} per epoch` : undefined}>
          <input data-testid="train-batch-size" type="number" min={1} step={1} value={form.batchSize}
            onChange={(event) => set("batchSize", event.target.value)} aria-invalid={!!errors.batch_size || undefined} />
        </Field>
        <Field label="Epochs" error={errors.epochs} hint={perEpoch && epochs ? `${(perEpoch * epochs).toLocaleString()} steps` : undefined}>
          <input data-testid="train-epochs" type="number" min={1} step={1} value={form.epochs}
            onChange={(event) => set("epochs", event.target.value)} aria-invalid={!!errors.epochs || undefined} />
        </Field>
        <Field label="Seed" error={errors.seed}>
          <input type="number" min={0} step={1} value={form.seed} onChange={(event) => set("seed", event.target.value)} />
        </Field>
      </fieldset>

      <fieldset>
        <legend>Optimizer</legend>
        <Field label="Optimizer" error={errors.optimizer}>
          <select data-testid="train-optimizer" value={form.optimizer} onChange={(event) => changeOptimizer(event.target.value)}>
            {Object.entries(OPTIMIZERS).map(([name, spec]) => <option key={name} value={name}>{spec.label}</option>)}
          </select>
        </Field>
        <Field label="Learning rate" error={errors["optimizer.lr"]}>
          <input data-testid="train-learning-rate" type="number" min={0} step="any" value={form.learningRate}
            onChange={(event) => set("learningRate", event.target.value)} aria-invalid={!!errors["optimizer.lr"] || undefined} />
        </Field>
        {optimizer?.options.map((option) => (
          <OptionField key={option.name} option={option} values={form.optimizerOptions} error={errors[`optimizer.${option.name}`]}
            onChange={(values) => set("optimizerOptions", values)} />
        ))}
      </fieldset>

      <fieldset>
        <legend>Learning-rate schedule</legend>
        <Field label="Schedule" error={errors.schedule}>
          <select value={form.schedule} onChange={(event) => setForm({ ...form, schedule: event.target.value, scheduleOptions: {} })} aria-label="Schedule">
            {Object.entries(SCHEDULES).map(([name, spec]) => <option key={name} value={name}>{spec.label}</option>)}
          </select>
        </Field>
        {schedule?.options.map((option) => (
          <OptionField key={option.name} option={option} values={form.scheduleOptions} error={errors[`schedule.${option.name}`]}
            placeholder={proposedValue(option.name, size)} onChange={(values) => set("scheduleOptions", values)} />
        ))}
        {form.schedule === "warmup" && (
          <>
            <Field label="Then" error={errors.then}>
              <select value={form.then} onChange={(event) => setForm({ ...form, then: event.target.value, thenOptions: {} })} aria-label="After warm-up">
                {Object.entries(SCHEDULES).filter(([name]) => name !== "warmup").map(([name, spec]) => <option key={name} value={name}>{spec.label}</option>)}
              </select>
            </Field>
            {SCHEDULES[form.then]?.options.map((option) => (
              <OptionField key={option.name} option={option} values={form.thenOptions} error={errors[`then.${option.name}`]}
                placeholder={proposedValue(option.name, { ...size, totalSteps: perEpoch ? perEpoch * epochs - (Number(form.scheduleOptions.warmup_steps) || perEpoch) : null })}
                onChange={(values) => set("thenOptions", values)} />
            ))}
          </>
        )}
      </fieldset>

      <fieldset>
        <legend>Early stopping</legend>
        <label className="inline wide">
          <input type="checkbox" checked={form.earlyStopping} onChange={(event) => set("earlyStopping", event.target.checked)} />
          Stop when the monitored metric stops improving
        </label>
        {form.earlyStopping && (
          <>
            <Field label="Monitor" hint={/accuracy|auc|r2/.test(form.monitor) ? "higher is better" : "lower is better"}>
              <select value={form.monitor} onChange={(event) => set("monitor", event.target.value)} aria-label="Monitor">
                {monitors.map((monitor) => <option key={monitor} value={monitor}>{monitor}</option>)}
              </select>
            </Field>
            <Field label="Patience (epochs)">
              <input type="number" min={1} step={1} value={form.patience} onChange={(event) => set("patience", event.target.value)} />
            </Field>
            <Field label="Minimum change">
              <input type="number" min={0} step="any" value={form.minDelta} onChange={(event) => set("minDelta", event.target.value)} />
            </Field>
            <label className="inline">
              <input type="checkbox" checked={form.restoreBest} onChange={(event) => set("restoreBest", event.target.checked)} />
              Keep the best epoch's weights
            </label>
          </>
        )}
        {errors.early_stopping && <div className="field-error wide" role="alert">{errors.early_stopping}</div>}
      </fieldset>

      <fieldset>
        <legend>Where and what</legend>
        <Field label="Device" error={errors.device}>
          <select value={form.device} onChange={(event) => set("device", event.target.value as TrainForm["device"])} aria-label="Device">
            <option value="cpu">CPU</option>
            <option value="gpu">GPU</option>
          </select>
        </Field>
        <Field label="Workers" error={errors.workers} hint={Number(form.workers) > 1 ? "data-parallel" : undefined}>
          <input type="number" min={1} max={64} step={1} value={form.workers} onChange={(event) => set("workers", event.target.value)}
            aria-invalid={!!errors.workers || undefined} />
        </Field>
        {Number(form.workers) > 1 && (
          <Field label="Strategy" error={errors.strategy} hint={STRATEGIES[form.strategy].hint}>
            <select value={form.strategy} onChange={(event) => set("strategy", event.target.value as TrainForm["strategy"])}
              aria-label="Strategy">
              {Object.entries(STRATEGIES).map(([value, strategy]) => <option key={value} value={value}>{strategy.label}</option>)}
            </select>
          </Field>
        )}
        {Number(form.workers) > 1 && form.strategy === "ps" && (
          <Field label="Staleness bound" error={errors.staleness} hint="empty: synchronous; n: asynchronous, at most n steps ahead">
            <input type="number" min={0} step={1} value={form.staleness} placeholder="synchronous"
              onChange={(event) => set("staleness", event.target.value)} aria-invalid={!!errors.staleness || undefined} />
          </Field>
        )}
        <Field label="Run name" error={errors.name}>
          <input data-testid="train-name" value={form.name} maxLength={200} placeholder="optional" onChange={(event) => set("name", event.target.value)} />
        </Field>
        <Field label="Tags" error={errors.tags} hint="comma-separated">
          <input value={form.tags} placeholder="baseline, small-lr" onChange={(event) => set("tags", event.target.value)} aria-label="Tags" />
        </Field>
      </fieldset>

      {errors.form && <div className="error-box" role="alert">{errors.form}</div>}
      {Object.keys(errors).length > 0 && !errors.form && (
        <div className="error-box" role="alert">The server refused some values; see the marked fields.</div>
      )}
      <div className="actions">
        <button type="button" onClick={onClose}>Cancel</button>
        <button type="submit" className="primary" disabled={submitting || datasets === null}>
          {submitting ? "Starting…" : "Start training"}
        </button>
      </div>
    </form>
  );
}

function Field({ label, error, hint, wide, children }: { label: string; error?: string; hint?: string; wide?: boolean; children: ReactNode }) {
  return (
    <label className={wide ? "wide" : undefined}>
      {label}
      {children}
      {error ? <span className="field-error" role="alert">{error}</span> : hint ? <span className="field-hint">{hint}</span> : null}
    </label>
  );
}

function OptionField({ option, values, error, placeholder, onChange }: {
  option: NumberOption; values: Record<string, string>; error?: string; placeholder?: number | null;
  onChange(values: Record<string, string>): void;
}) {
  const shown = values[option.name] ?? (option.default === null ? "" : String(option.default));
  return (
    <Field label={option.label} error={error} hint={option.hint}>
      <input
        type="number" step={option.integer ? 1 : option.step ?? "any"} value={shown}
        placeholder={placeholder !== undefined && placeholder !== null ? String(placeholder) : option.default === null ? "none" : undefined}
        onChange={(event) => onChange({ ...values, [option.name]: event.target.value })}
        aria-invalid={!!error || undefined}
        aria-label={option.label}
      />
    </Field>
  );
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
