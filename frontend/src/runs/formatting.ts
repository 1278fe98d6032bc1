// How the run tables write a value: results with a metric's precision, settings as typed.
import { formatValue } from "../charts/chart";

/** A result: numbers with a metric's precision, "—" for none. */
export function formatCell(value: unknown): string {
  if (value === null || value === undefined) return "—";
  if (typeof value === "number") return formatValue(value);
  if (typeof value === "string") return value;
  return JSON.stringify(value);
}

/** Settings as the user typed them (0.01, not 0.0100). */
export function formatPlain(value: unknown): string {
  if (value === null || value === undefined) return "—";
  return typeof value === "string" ? value : typeof value === "number" ? String(value) : JSON.stringify(value);
}
