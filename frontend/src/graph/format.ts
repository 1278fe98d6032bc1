// How numbers and shapes read on the canvas.

/** `[null, 64]` -> `?×64`; a scalar is `scalar`. */
export function formatShape(shape: (number | null)[] | null | undefined): string {
  if (!shape) return "";
  if (shape.length === 0) return "scalar";
  return shape.map((size) => (size === null ? "?" : String(size))).join("×");
}

/** 1234567 -> "1.23M"; small numbers stay whole. */
export function formatCount(value: number): string {
  const units: [number, string][] = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];
  for (const [size, suffix] of units) {
    if (Math.abs(value) >= size) return `${Number((value / size).toPrecision(3))}${suffix}`;
  }
  return String(value);
}

export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${Number(value.toPrecision(3))} ${units[unit]}`;
}

/** A parameter value as a short text for the node body. */
export function formatValue(value: unknown): string {
  if (value === null) return "none";
  if (Array.isArray(value)) return `[${value.map(formatValue).join(", ")}]`;
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}
