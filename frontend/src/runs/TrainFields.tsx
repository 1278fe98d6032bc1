// The train panel's fields, generated from a training option's schema entry (type, label, bounds,
// choices, doc) the way the inspector's are from an op's parameters. Each control sits in its
// <label> and carries the option's label as its accessible name.
import type { ReactNode } from "react";
import type { OptionSpec } from "./trainingOptions";

export function Field({ label, error, hint, wide, title, children }: {
  label: string; error?: string; hint?: string; wide?: boolean; title?: string; children: ReactNode;
}) {
  return (
    <label className={wide ? "wide" : undefined} title={title || undefined}>
      {label}
      {children}
      {error ? <span className="field-error" role="alert">{error}</span> : hint ? <span className="field-hint">{hint}</span> : null}
    </label>
  );
}

/** `train-batch-size` for `batch_size`: the ids the browser tests find fields by. */
export const testIdOf = (name: string) => `train-${name.replace(/_/g, "-")}`;

export interface OptionInputProps {
  option: OptionSpec;
  /** What the user typed (or the default's text); a boolean for a checkbox. */
  value: string | boolean | undefined;
  onChange(value: string | boolean): void;
  error?: string;
  hint?: string;
  placeholder?: string;
  testId?: string;
  /** Shown instead of the schema's choices (early stopping's monitors depend on the dataset). */
  choices?: { value: string; label: string }[];
}

export function OptionInput({ option, value, onChange, error, hint, placeholder, testId, choices }: OptionInputProps) {
  const invalid = !!error || undefined;
  if (option.type === "bool") {
    return (
      <>
        <label className="inline" title={option.doc || undefined}>
          <input type="checkbox" data-testid={testId} checked={value === true} aria-invalid={invalid}
            onChange={(event) => onChange(event.target.checked)} />
          {option.label}
        </label>
        {error && <span className="field-error" role="alert">{error}</span>}
      </>
    );
  }
  const listed = choices ?? (option.type === "choice" ? (option.choices ?? []).map((choice) => ({ value: String(choice), label: String(choice) })) : null);
  if (listed) {
    return (
      <Field label={option.label} error={error} hint={hint} title={option.doc}>
        <select data-testid={testId} value={String(value ?? "")} aria-label={option.label} aria-invalid={invalid}
          onChange={(event) => onChange(event.target.value)}>
          {listed.map((choice) => <option key={choice.value} value={choice.value}>{choice.label}</option>)}
        </select>
      </Field>
    );
  }
  const numeric = option.type === "int" || option.type === "float";
  return (
    <Field label={option.label} error={error} hint={hint} title={option.doc}>
      <input
        data-testid={testId}
        type={numeric ? "number" : "text"}
        min={numeric ? option.minimum : undefined}
        max={numeric ? option.maximum : undefined}
        step={option.type === "int" ? 1 : numeric ? "any" : undefined}
        value={String(value ?? "")}
        placeholder={placeholder ?? (option.nullable ? "none" : undefined)}
        aria-label={option.label}
        aria-invalid={invalid}
        onChange={(event) => onChange(event.target.value)}
      />
    </Field>
  );
}
