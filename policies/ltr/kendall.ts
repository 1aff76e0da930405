/**
 * Kendall's tau-b between two paired samples (ties handled as scipy's default does), the
 * quality measure of a ranking predictor (Learning-to-Rank spec, section 3.4).
 *
 * @module
 */

/** Kendall's tau-b of `x` and `y` (same length); NaN when either is constant. */
export function kendallTau(x: ArrayLike<number>, y: ArrayLike<number>): number {
  const n = x.length;
  if (y.length !== n) {
    throw new RangeError(`kendallTau needs equal lengths, got ${n} and ${y.length}`);
  }
  let concordant = 0, discordant = 0, tiesX = 0, tiesY = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[i], yi = y[i];
    for (let j = i + 1; j < n; j++) {
      const dx = xi - x[j], dy = yi - y[j];
      if (dx === 0 && dy === 0) continue;
      if (dx === 0) tiesX++;
      else if (dy === 0) tiesY++;
      else if ((dx > 0) === (dy > 0)) concordant++;
      else discordant++;
    }
  }
  const denom = Math.sqrt((concordant + discordant + tiesX) * (concordant + discordant + tiesY));
  return denom === 0 ? NaN : (concordant - discordant) / denom;
}
