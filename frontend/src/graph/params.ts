// Parameter values from the inspector's text fields, checked against the op's schema before they
// reach the document (the server still validates; this catches typos while typing).
import type { OpSchema, ParamSchema } from "../api/types";
import { formatValue } from "./format";

export type ParamParse = { ok: true; value: unknown } | { ok: false; error: string };

function checkBounds(schema: ParamSchema, value: number): string | null {
  if (schema.minimum !== undefined && value < schema.minimum) return `at least ${schema.minimum}`;
  if (schema.maximum !== undefined && value > schema.maximum) return `at most ${schema.maximum}`;
  return null;
}

function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

function isInt(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value);
}

/** `undefined` means "not set": the op's default applies. */
export function parseParam(schema: ParamSchema, raw: string): ParamParse {
  const text = raw.trim();
  if (text === "") return { ok: true, value: undefined };
  if (schema.nullable && (text === "null" || text === "none")) return { ok: true, value: null };
  switch (schema.type) {
    case "int": {
      const value = Number(text);
      if (!Number.isInteger(value)) return { ok: false, error: "a whole number" };
      const bound = checkBounds(schema, value);
      return bound ? { ok: false, error: bound } : { ok: true, value };
    }
    case "float": {
      const value = Number(text);
      if (!Number.isFinite(value)) return { ok: false, error: "a number" };
      const bound = checkBounds(schema, value);
      return bound ? { ok: false, error: bound } : { ok: true, value };
    }
    case "str":
    case "choice":
      return { ok: true, value: text };
    case "bool":
      if (text === "true" || text === "false") return { ok: true, value: text === "true" };
      return { ok: false, error: "true or false" };
    case "dict": {
      const parsed = parseJson(text);
      if (!parsed.ok || typeof parsed.value !== "object" || parsed.value === null || Array.isArray(parsed.value)) {
        return { ok: false, error: "a JSON object, e.g. {\"key\": 1}" };
      }
      return parsed;
    }
    case "padding":
      if (schema.choices?.includes(text)) return { ok: true, value: text };
      return parseIntList(schema, text, true);
    case "axes":
      return parseIntList(schema, text, true);
    case "shape":
      return parseIntList(schema, text, false, true);
    case "int_list":
    default:
      return parseIntList(schema, text, true);
  }
}

/** "3", "3, 3" or "[3, 3]"; a single int stays a number where the schema allows one. */
function parseIntList(schema: ParamSchema, text: string, singleAllowed: boolean, allowMinusOne = false): ParamParse {
  const wrapped = text.startsWith("[") ? text : `[${text}]`;
  const parsed = parseJson(wrapped);
  const hint = singleAllowed ? "a whole number or a list like [3, 3]" : "a list like [1, 28, 28]";
  if (!parsed.ok || !Array.isArray(parsed.value) || !parsed.value.every(isInt)) return { ok: false, error: hint };
  const list = parsed.value as number[];
  for (const item of list) {
    if (allowMinusOne && item === -1) continue;
    const bound = checkBounds(schema, item);
    if (bound) return { ok: false, error: `each ${bound}` };
  }
  if (singleAllowed && !text.startsWith("[") && list.length === 1 && schema.type !== "int_list") return { ok: true, value: list[0] };
  return { ok: true, value: list };
}

/** The text a field shows for a value (the inverse of parseParam). */
export function paramText(value: unknown): string {
  if (value === undefined) return "";
  if (value === null) return "null";
  if (typeof value === "string") return value;
  return JSON.stringify(value);
}

/** Params worth showing on the node: required ones and any set away from the default. */
export function keyParams(op: OpSchema | undefined, params: Record<string, unknown>, limit = 3): [string, string][] {
  if (!op) return Object.entries(params).slice(0, limit).map(([name, value]) => [name, formatValue(value)]);
  const shown: [string, string][] = [];
  for (const schema of op.params) {
    const value = params[schema.name];
    if (value === undefined) {
      if (schema.required) shown.push([schema.name, "?"]);
      continue;
    }
    if (JSON.stringify(value) === JSON.stringify(schema.default) && !schema.required) continue;
    shown.push([schema.name, formatValue(value)]);
  }
  return shown.slice(0, limit);
}
