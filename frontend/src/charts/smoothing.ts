// TensorBoard's scalar smoothing: an exponential moving average, debiased so that the first points
// are not pulled towards zero (the same correction Adam applies to its moment estimates).

/**
 * The debiased EMA of `values` with `weight` in [0, 1): 0 returns the values unchanged, values
 * near 1 smooth heavily. Non-finite values (NaN for missing points, ±Infinity) are passed through
 * and do not enter the average, so one diverged step does not poison the rest of the curve.
 * Writes into `out` when given (it must be at least as long), so a caller redrawing every frame
 * can reuse one buffer.
 */
export function smoothEma(values: ArrayLike<number>, weight: number, out?: Float64Array): Float64Array {
  const length = values.length;
  const result = out && out.length >= length ? out : new Float64Array(length);
  const w = Math.min(Math.max(weight, 0), 0.999999);
  if (w === 0 || isConstant(values)) {
    for (let i = 0; i < length; i++) result[i] = values[i];
    return result;
  }
  let last = 0;
  let decay = 1; // w ** (finite values so far), kept as a product rather than a power per point
  for (let i = 0; i < length; i++) {
    const value = values[i];
    if (!Number.isFinite(value)) {
      result[i] = value;
      continue;
    }
    last = last * w + (1 - w) * value;
    decay *= w;
    result[i] = last / (1 - decay);
  }
  return result;
}

// A constant series stays exactly constant: the debiasing division would otherwise add rounding noise
// that a log-scale or zoomed axis makes visible.
function isConstant(values: ArrayLike<number>): boolean {
  const first = values[0];
  for (let i = 1; i < values.length; i++) if (values[i] !== first) return false;
  return true;
}
