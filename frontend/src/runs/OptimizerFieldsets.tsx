// The optimizer and its learning-rate schedule, each generated from the engine's schema: the
// optimizers and schedules to choose from, and the chosen one's options with their defaults.
import { defaultLearningRate, proposedValue, type TrainForm } from "./trainConfig";
import { OptionInput } from "./TrainFields";
import { optionNamed, type Choice, type TrainingOptionsSchema } from "./trainingOptions";

interface Props {
  schema: TrainingOptionsSchema;
  form: TrainForm;
  errors: Record<string, string>;
  setForm(update: (current: TrainForm) => TrainForm): void;
  /** Training steps per epoch on the chosen dataset, when its size is known; epochs as typed. */
  perEpoch: number | null;
  epochs: number;
}

const firstError = (errors: Record<string, string>, ...keys: string[]) => keys.map((key) => errors[key]).find(Boolean);

export function OptimizerFieldset({ schema, form, errors, setForm }: Props) {
  const chosen = schema.optimizers.find((choice) => choice.name === form.optimizer);
  const lr = optionNamed(chosen?.params ?? [], "lr");
  const choose = (name: string) => setForm((current) => ({
    ...current, optimizer: name, optimizerOptions: {},
    learningRate: current.learningRateEdited ? current.learningRate : defaultLearningRate(schema, name),
  }));
  return (
    <fieldset>
      <legend>Optimizer</legend>
      <OptionInput
        option={{ ...optionNamed(schema.options, "optimizer")!, type: "choice" }} testId="train-optimizer" value={form.optimizer}
        choices={labelled(schema.optimizers)} error={firstError(errors, "optimizer", "optimizer.name")} onChange={(name) => choose(String(name))}
      />
      {lr && (
        <OptionInput option={lr} testId="train-learning-rate" value={form.learningRate} error={errors["optimizer.lr"]}
          onChange={(value) => setForm((current) => ({ ...current, learningRate: String(value), learningRateEdited: true }))} />
      )}
      {chosen?.params.filter((option) => option.name !== "lr" && option.type !== "schedule").map((option) => (
        <OptionInput key={option.name} option={option} error={errors[`optimizer.${option.name}`]}
          value={form.optimizerOptions[option.name] ?? (option.default === null ? "" : String(option.default))}
          onChange={(value) => setForm((current) => ({ ...current, optimizerOptions: { ...current.optimizerOptions, [option.name]: String(value) } }))} />
      ))}
    </fieldset>
  );
}

export function ScheduleFieldset({ schema, form, errors, setForm, perEpoch, epochs }: Props) {
  const size = { epochs, perEpoch };
  const thenSteps = perEpoch ? perEpoch * epochs - (Number(form.scheduleOptions.warmup_steps) || perEpoch) : null;
  const scheduleOption = optionNamed(schema.optimizers[0]?.params ?? [], "schedule");
  const thenOption = optionNamed(schema.schedules.find((choice) => choice.name === "warmup")?.params ?? [], "then");
  return (
    <fieldset>
      <legend>Learning-rate schedule</legend>
      {scheduleOption && (
        <OptionInput option={{ ...scheduleOption, type: "choice" }} value={form.schedule} choices={labelled(schema.schedules)}
          error={firstError(errors, "optimizer.schedule", "optimizer.schedule.name")}
          onChange={(name) => setForm((current) => ({ ...current, schedule: String(name), scheduleOptions: {} }))} />
      )}
      <ScheduleOptions schema={schema} name={form.schedule} values={form.scheduleOptions} path="optimizer.schedule" errors={errors}
        proposed={(option) => proposedValue(option, size)}
        onChange={(values) => setForm((current) => ({ ...current, scheduleOptions: values }))} />
      {form.schedule === "warmup" && thenOption && (
        <>
          <OptionInput option={{ ...thenOption, type: "choice" }} value={form.then}
            choices={labelled(schema.schedules.filter((choice) => choice.name !== "warmup"))}
            error={firstError(errors, "optimizer.schedule.then", "optimizer.schedule.then.name")}
            onChange={(name) => setForm((current) => ({ ...current, then: String(name), thenOptions: {} }))} />
          <ScheduleOptions schema={schema} name={form.then} values={form.thenOptions} path="optimizer.schedule.then" errors={errors}
            proposed={(option) => proposedValue(option, { ...size, totalSteps: thenSteps })}
            onChange={(values) => setForm((current) => ({ ...current, thenOptions: values }))} />
        </>
      )}
    </fieldset>
  );
}

function ScheduleOptions({ schema, name, values, path, errors, proposed, onChange }: {
  schema: TrainingOptionsSchema; name: string; values: Record<string, string>; path: string; errors: Record<string, string>;
  proposed(option: string): number | null; onChange(values: Record<string, string>): void;
}) {
  const params = schema.schedules.find((choice) => choice.name === name)?.params ?? [];
  return (
    <>
      {params.filter((option) => option.type !== "schedule").map((option) => {
        const suggestion = proposed(option.name);
        return (
          <OptionInput key={option.name} option={option} error={errors[`${path}.${option.name}`]}
            value={values[option.name] ?? (option.required || option.default === null ? "" : String(option.default))}
            placeholder={suggestion !== null ? String(suggestion) : option.required ? "needs the dataset's size" : undefined}
            hint={option.required ? (option.name === "total_steps" ? "default: the whole run" : "default: one epoch") : undefined}
            onChange={(value) => onChange({ ...values, [option.name]: String(value) })} />
        );
      })}
    </>
  );
}

function labelled(choices: Choice[]) {
  return choices.map((choice) => ({ value: choice.name, label: choice.label }));
}
