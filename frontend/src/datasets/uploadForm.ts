// What the upload form knows before the server reads the file: its format from the name (as
// webapp/datasets/uploads.py detects it), and for CSV/TSV the columns of the header row, so the
// label column can be picked from a list instead of typed.

export type UploadFormat = "csv" | "tsv" | "npz" | "idx" | "zip";

export function detectFormat(fileName: string): UploadFormat | null {
  const lower = fileName.toLowerCase();
  const name = lower.endsWith(".gz") ? lower.slice(0, -3) : lower;
  if (name.endsWith(".csv")) return "csv";
  if (name.endsWith(".tsv")) return "tsv";
  if (lower.endsWith(".npz")) return "npz";
  if (lower.endsWith(".zip")) return "zip";
  if (name.includes("idx") || name.endsWith("-ubyte")) return "idx";
  return null;
}

/** The column names of the first line of `text`, with RFC 4180 quotes. */
export function headerColumns(text: string, delimiter: string): string[] {
  const columns: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (quoted) {
      if (char === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (char === '"') quoted = false;
      else field += char;
    } else if (char === '"' && field === "") quoted = true;
    else if (char === delimiter) {
      columns.push(field.trim());
      field = "";
    } else if (char === "\n" || char === "\r") break;
    else field += char;
  }
  columns.push(field.trim());
  return columns.filter((column, index) => column !== "" || index < columns.length - 1);
}

const TARGET_NAMES = ["label", "labels", "target", "class", "y", "species", "outcome"];

/** The column most likely to hold the labels: a conventional name, else the last column. */
export function guessTarget(columns: readonly string[]): string {
  const byName = columns.find((column) => TARGET_NAMES.includes(column.toLowerCase()));
  return byName ?? columns[columns.length - 1] ?? "";
}
