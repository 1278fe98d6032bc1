// The train panel's sections besides the optimizer's: early stopping, where and how the run goes
// (device, workers, distributed strategy, name, tags), image augmentation and normalization, and
// the advanced options, each field generated from the engine's training-option schema.
import { monitorChoices, type TrainForm } from "./trainConfig";
import { Field, OptionInput, testIdOf } from "./TrainFields";
import { optionNamed, type OptionSpec, type TrainingOptionsSchema } from "./trainingOptions";

interface Props {
  schema: TrainingOptionsSchema;
  form: TrainForm;
  errors: Record<string, string>;
  setForm(update: (current: TrainForm) => TrainForm): void;
}

/** A top-level option's field, bound to form.options. */
export function TopLevelField({ option, form, errors, setForm, hint }: Omit<Props, "schema"> & { option: OptionSpec; hint?: string }) {
  // Device names read as acronyms (CPU, GPU); other choices as the schema spells them.
  const choices = option.name === "device" ? option.choices?.map((choice) => ({ value: String(choice), label: String(choice).toUpperCase() })) : undefined;
  return (
    <OptionInput option={option} testId={testIdOf(option.name)} value={form.options[option.name]} error={errors[option.name]} hint={hint}
      choices={choices}
      onChange={(value) => setForm((current) => ({ ...current, options: { ...current.options, [option.name]: value } }))} />
  );
}

export function EarlyStoppingFieldset({ schema, form, errors, setForm, task }: Props & { task: string }) {
  const monitors = monitorChoices(schema, task).map((monitor) => ({ value: monitor, label: monitor }));
  const higherIsBetter = /accuracy|auc|r2/.test(String(form.stopping.monitor));
  const fieldErrors = Object.entries(errors).filter(([key]) => key.startsWith("early_stopping"));
  const placed = new Set(schema.early_stopping.map((option) => `early_stopping.${option.name}`));
  return (
    <fieldset>
      <legend>Early stopping</legend>
      <label className="inline wide">
        <input type="checkbox" checked={form.earlyStopping} onChange={(event) => setForm((current) => ({ ...current, earlyStopping: event.target.checked }))} />
        Stop when the monitored metric stops improving
      </label>
      {form.earlyStopping && schema.early_stopping.filter((option) => option.name !== "mode").map((option) => (
        <OptionInput key={option.name} option={option} value={form.stopping[option.name]} error={errors[`early_stopping.${option.name}`]}
          choices={option.name === "monitor" ? monitors : undefined}
          hint={option.name === "monitor" ? (higherIsBetter ? "higher is better" : "lower is better") : undefined}
          onChange={(value) => setForm((current) => ({ ...current, stopping: { ...current.stopping, [option.name]: value } }))} />
      ))}
      {fieldErrors.filter(([key]) => !placed.has(key) || !form.earlyStopping).map(([key, message]) => (
        <div key={key} className="field-error wide" role="alert">{message}</div>
      ))}
    </fieldset>
  );
}

export function RunFieldset({ schema, form, errors, setForm }: Props) {
  const workers = Number(form.options.workers) || 1;
  const shown = (name: string) => name !== "strategy" && name !== "staleness" ? true
    : name === "strategy" ? workers > 1 : workers > 1 && form.options.strategy === "ps";
  const hints: Record<string, string | undefined> = {
    workers: workers > 1 ? "data-parallel" : undefined,
    strategy: optionNamed(schema.options, "strategy")?.doc,
    staleness: "empty: synchronous; n: asynchronous, at most n steps ahead",
  };
  return (
    <fieldset>
      <legend>Where and what</legend>
      {schema.options.filter((option) => option.group === "where" && shown(option.name)).map((option) => (
        <TopLevelField key={option.name} option={option} form={form} errors={errors} setForm={setForm} hint={hints[option.name]} />
      ))}
      <Field label="Run name" error={errors.name}>
        <input data-testid="train-name" value={form.name} maxLength={200} placeholder="optional" aria-label="Run name"
          onChange={(event) => setForm((current) => ({ ...current, name: event.target.value }))} />
      </Field>
      <Field label="Tags" error={errors.tags} hint="comma-separated">
        <input value={form.tags} placeholder="baseline, small-lr" aria-label="Tags"
          onChange={(event) => setForm((current) => ({ ...current, tags: event.target.value }))} />
      </Field>
    </fieldset>
  );
}

/** The "augmentation" group (random crop, flip, per-channel normalization of image inputs), folded
 * away until one is set or refused. */
export function AugmentationFieldset({ schema, form, errors, setForm }: Props) {
  const options = schema.options.filter((option) => option.group === "augmentation");
  if (!options.length) return null;
  const invalid = options.some((option) => errors[option.name]);
  const changed = options.some((option) => form.options[option.name] !== undefined && form.options[option.name] !== (typeof option.default === "boolean" ? option.default : String(option.default ?? "")));
  return (
    <details className="wide" open={invalid || changed || undefined} data-testid="train-augmentation">
      <summary>Images: augmentation and normalization</summary>
      <fieldset>
        {options.map((option) => <TopLevelField key={option.name} option={option} form={form} errors={errors} setForm={setForm} />)}
      </fieldset>
    </details>
  );
}

/** The "fine_tuning" group: start from a run's checkpoint or the imported weights, map, freeze and
 * slow down nodes; folded away until one is set or refused. */
export function FineTuningFieldset({ schema, form, errors, setForm }: Props) {
  const options = schema.options.filter((option) => option.group === "fine_tuning");
  if (!options.length) return null;
  const invalid = options.some((option) => errors[option.name]);
  const changed = options.some((option) => form.options[option.name] !== undefined && form.options[option.name] !== (typeof option.default === "boolean" ? option.default : String(option.default ?? "")));
  return (
    <details className="wide" open={invalid || changed || undefined} data-testid="train-fine-tuning">
      <summary>Fine-tuning: starting weights, frozen nodes</summary>
      <fieldset>
        {options.map((option) => <TopLevelField key={option.name} option={option} form={form} errors={errors} setForm={setForm} />)}
      </fieldset>
    </details>
  );
}

export function AdvancedFieldset({ schema, form, errors, setForm }: Props) {
  const options = schema.options.filter((option) => option.group === "advanced");
  const invalid = options.some((option) => errors[option.name]);
  return (
    <details className="wide" open={invalid || undefined}>
      <summary>Advanced</summary>
      <fieldset>
        {options.map((option) => <TopLevelField key={option.name} option={option} form={form} errors={errors} setForm={setForm} />)}
      </fieldset>
    </details>
  );
}
