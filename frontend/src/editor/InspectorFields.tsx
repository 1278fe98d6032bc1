// The inspector's form fields: text that parses (shapes, lists, numbers) and a field per op
// parameter generated from its schema.
import { useEffect, useState } from "react";
import type { ParamSchema } from "../api/types";
import { paramText, parseParam } from "../graph/params";

/** A text field that keeps what is typed while it does not parse, and follows the value otherwise. */
export function ParsedField({ id, testId, value, parse, format, onValue, placeholder, multiline, label }: {
  id: string;
  testId: string;
  value: unknown;
  parse(text: string): { ok: true; value: unknown } | { ok: false; error: string };
  format(value: unknown): string;
  onValue(value: unknown): void;
  placeholder?: string;
  multiline?: boolean;
  label: string;
}) {
  const [text, setText] = useState(() => format(value));
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    // Undo, redo and loads change the value under the field: show it unless the text already means it.
    const parsed = parse(text);
    if (!parsed.ok || JSON.stringify(parsed.value) !== JSON.stringify(value)) {
      setText(format(value));
      setError(null);
    }
  }, [JSON.stringify(value)]);
  function change(next: string) {
    setText(next);
    const parsed = parse(next);
    if (parsed.ok) {
      setError(null);
      onValue(parsed.value);
    } else {
      setError(parsed.error);
    }
  }
  const common = {
    id, "data-testid": testId, value: text, placeholder, "aria-invalid": error ? true : undefined,
    "aria-describedby": error ? `${id}-error` : undefined, "aria-label": label,
  };
  return (
    <>
      {multiline
        ? <textarea {...common} rows={4} onChange={(event) => change(event.target.value)} />
        : <input {...common} onChange={(event) => change(event.target.value)} />}
      {error && <span id={`${id}-error`} className="nf-field-error">expected {error}</span>}
    </>
  );
}

export function ParamField({ nodeId, schema, value, onValue }: { nodeId: string; schema: ParamSchema; value: unknown; onValue(value: unknown): void }) {
  const id = `param-${nodeId}-${schema.name}`;
  const placeholder = schema.default === undefined ? (schema.required ? "required" : "") : paramText(schema.default);
  let control;
  if (schema.type === "bool") {
    const checked = (value ?? schema.default ?? false) as boolean;
    control = <input id={id} type="checkbox" data-testid={`param-${schema.name}`} checked={checked} onChange={(event) => onValue(event.target.checked)} />;
  } else if (schema.type === "choice") {
    control = (
      <select id={id} data-testid={`param-${schema.name}`} value={value === undefined ? "" : String(value)}
        onChange={(event) => onValue(event.target.value === "" ? undefined : schema.choices?.find((choice) => String(choice) === event.target.value))}>
        <option value="">{schema.default !== undefined ? `default (${paramText(schema.default)})` : "choose…"}</option>
        {(schema.choices ?? []).map((choice) => <option key={String(choice)} value={String(choice)}>{String(choice)}</option>)}
      </select>
    );
  } else {
    control = (
      <ParsedField id={id} testId={`param-${schema.name}`} label={schema.name} value={value} placeholder={placeholder}
        multiline={schema.type === "dict"} parse={(text) => parseParam(schema, text)} format={paramText} onValue={onValue} />
    );
  }
  const bounds = [schema.minimum !== undefined ? `≥ ${schema.minimum}` : "", schema.maximum !== undefined ? `≤ ${schema.maximum}` : ""].filter(Boolean).join(", ");
  return (
    <div className={`nf-field${schema.type === "bool" ? " nf-field-check" : ""}`}>
      <label htmlFor={id}>{schema.name}{schema.required && <span className="nf-required" title="required"> *</span>} <span className="nf-type">{schema.type}{bounds ? ` ${bounds}` : ""}</span></label>
      {control}
      {schema.doc && <span className="nf-help">{schema.doc}</span>}
    </div>
  );
}

export function parseShape(text: string): { ok: true; value: unknown } | { ok: false; error: string } {
  const trimmed = text.trim();
  const wrapped = trimmed.startsWith("[") ? trimmed : `[${trimmed}]`;
  try {
    const value = JSON.parse(wrapped);
    if (Array.isArray(value) && value.every((size) => size === null || (Number.isInteger(size) && size > 0))) return { ok: true, value };
  } catch {
    // falls through to the message below
  }
  return { ok: false, error: "a list of sizes without the batch axis, e.g. [64] or [1, 28, 28]" };
}
