// Several series with their own x values put on one shared x axis, the shape uPlot draws
// (AlignedData: one x array, one y array per series, null where a series has no point).
import type uPlot from "uplot";

export interface XYSeries {
  x: ArrayLike<number>;
  y: ArrayLike<number>;
}

export interface AlignOptions {
  /** Log scales cannot show zero or negative values: they become gaps. */
  positiveOnly?: boolean;
}

/**
 * A k-way merge of series whose x values are ascending. Rows with equal x are shared, so train and
 * validation points logged at the same step line up in the legend. Non-finite y values become
 * null (uPlot draws them as gaps); every input point appears in the output.
 *
 * Series that share one x array (a curve and its smoothed copy) are merged once, and a series
 * that has a point on every row is handed over as its own typed array: a 100,000-point loss curve
 * with a few per-epoch series costs one pass, not a copy per series.
 */
export function alignSeries(inputs: readonly XYSeries[], options: AlignOptions = {}): uPlot.AlignedData {
  const sorted = inputs.map(sortedByX);
  const uniqueX: ArrayLike<number>[] = [];
  const xIndexOf = sorted.map((series) => {
    const found = uniqueX.indexOf(series.x);
    if (found >= 0) return found;
    uniqueX.push(series.x);
    return uniqueX.length - 1;
  });
  const { xs, positions } = mergeX(uniqueX);
  const rows = xs.length;
  const ys = sorted.map((series, k): uPlot.AlignedData[1] => {
    const y = series.y;
    const keep = (value: number) => Number.isFinite(value) && (!options.positiveOnly || value > 0);
    if (y.length === rows && everyKept(y, keep)) return toFloat64(y);
    // Left holey: uPlot reads a hole as a missing point, and not filling 100,000 nulls per redraw matters.
    const column: (number | null | undefined)[] = new Array(rows);
    const position = positions[xIndexOf[k]];
    for (let i = 0; i < y.length; i++) {
      const value = y[i];
      column[position ? position[i] : i] = keep(value) ? value : null;
    }
    return column;
  });
  return [xs, ...ys];
}

/** The union of ascending x arrays, and for each the row of each of its points (null: row = index). */
function mergeX(arrays: ArrayLike<number>[]): { xs: Float64Array; positions: (Int32Array | null)[] } {
  if (arrays.length === 0) return { xs: new Float64Array(0), positions: [] };
  if (arrays.length === 1) return { xs: toFloat64(arrays[0]), positions: [null] };
  const subset = positionsInLongest(arrays);
  if (subset) return subset;
  let total = 0;
  for (const x of arrays) total += x.length;
  const xs = new Float64Array(total);
  const positions = arrays.map((x) => new Int32Array(x.length));
  const heads = new Array<number>(arrays.length).fill(0);
  let rows = 0;
  for (;;) {
    let next = Infinity;
    let any = false;
    for (let k = 0; k < arrays.length; k++) {
      if (heads[k] < arrays[k].length) {
        any = true;
        const value = arrays[k][heads[k]];
        if (value < next) next = value;
      }
    }
    if (!any) break;
    xs[rows] = next;
    for (let k = 0; k < arrays.length; k++) {
      const head = heads[k];
      if (head < arrays[k].length && arrays[k][head] === next) {
        positions[k][head] = rows;
        heads[k] = head + 1;
      }
    }
    rows++;
  }
  // An array that has every row keeps identity positions, which `alignSeries` skips.
  return { xs: xs.subarray(0, rows), positions: positions.map((position) => (position.length === rows ? null : position)) };
}

/**
 * The common case of a run's chart: per-epoch series logged at steps the per-batch series also has.
 * Then the longest x array is the union, and one two-pointer pass per short array places it.
 */
function positionsInLongest(arrays: ArrayLike<number>[]): { xs: Float64Array; positions: (Int32Array | null)[] } | null {
  let longest = 0;
  for (let k = 1; k < arrays.length; k++) if (arrays[k].length > arrays[longest].length) longest = k;
  const base = arrays[longest];
  const positions: (Int32Array | null)[] = [];
  for (let k = 0; k < arrays.length; k++) {
    const x = arrays[k];
    if (k === longest || x.length === base.length) {
      if (k !== longest && !sameValues(x, base)) return null;
      positions.push(null);
      continue;
    }
    const position = new Int32Array(x.length);
    let j = 0;
    for (let i = 0; i < x.length; i++) {
      while (j < base.length && base[j] < x[i]) j++;
      if (j === base.length || base[j] !== x[i]) return null;
      position[i] = j++;
    }
    positions.push(position);
  }
  return { xs: toFloat64(base), positions };
}

function sameValues(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function everyKept(values: ArrayLike<number>, keep: (value: number) => boolean): boolean {
  for (let i = 0; i < values.length; i++) if (!keep(values[i])) return false;
  return true;
}

function sortedByX(series: XYSeries): XYSeries {
  const { x, y } = series;
  let ordered = true;
  for (let i = 1; i < x.length && ordered; i++) if (x[i] < x[i - 1]) ordered = false;
  if (ordered) return series;
  const order = Array.from({ length: x.length }, (_, i) => i).sort((a, b) => x[a] - x[b]);
  return { x: Float64Array.from(order, (i) => x[i]), y: Float64Array.from(order, (i) => y[i]) };
}

function toFloat64(values: ArrayLike<number>): Float64Array {
  return values instanceof Float64Array ? values : Float64Array.from(values as ArrayLike<number>);
}
