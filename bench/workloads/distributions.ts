/**
 * Length distributions: empirical ones given by published percentiles (sampled through
 * a piecewise-linear inverse CDF), uniform integers, and a Gaussian copula that couples
 * two marginals with a target Spearman rank correlation.
 *
 * @module
 */

import type { Rng } from "../../kernels/sim/rng.ts";

/** A distribution of positive integers. */
export interface LengthDistribution {
  /** The value at cumulative probability `u` in [0, 1) (the inverse CDF). */
  quantile(u: number): number;
}

/** Percentile points `[p, value]` (p in 0..100, increasing) define an empirical distribution. */
export function empirical(points: readonly (readonly [number, number])[]): LengthDistribution {
  const ps = points.map((p) => p[0] / 100);
  const vs = points.map((p) => p[1]);
  return {
    quantile(u: number): number {
      if (u <= ps[0]) return Math.max(1, Math.round(vs[0]));
      for (let i = 1; i < ps.length; i++) {
        if (u <= ps[i]) {
          const f = (u - ps[i - 1]) / (ps[i] - ps[i - 1]);
          return Math.max(1, Math.round(vs[i - 1] + f * (vs[i] - vs[i - 1])));
        }
      }
      return Math.max(1, Math.round(vs[vs.length - 1]));
    },
  };
}

/** Uniform integers in [lo, hi]. */
export function uniform(lo: number, hi: number): LengthDistribution {
  return { quantile: (u) => Math.min(hi, lo + Math.floor(u * (hi - lo + 1))) };
}

/** Log-normal with the given median and log-space sigma, clipped to [lo, hi]. */
export function logNormal(
  median: number,
  sigma: number,
  lo: number,
  hi: number,
): LengthDistribution {
  return {
    quantile(u: number): number {
      const z = normalQuantile(Math.min(Math.max(u, 1e-12), 1 - 1e-12));
      return Math.min(hi, Math.max(lo, Math.round(median * Math.exp(sigma * z))));
    },
  };
}

/** A mixture: with probability `tail` the value `cap`, else a draw from `body`. */
export function withTail(body: LengthDistribution, tail: number, cap: number): LengthDistribution {
  return {
    quantile(u: number): number {
      if (u >= 1 - tail) return cap;
      return Math.min(cap, body.quantile(u / (1 - tail)));
    },
  };
}

/**
 * Draw a (prompt, output) pair whose ranks have Spearman correlation `spearman`
 * (Gaussian copula: Pearson r = 2 sin(pi rho / 6)).
 */
export function drawPair(
  rng: Rng,
  prompt: LengthDistribution,
  output: LengthDistribution,
  spearman: number,
): [number, number] {
  if (spearman === 0) return [prompt.quantile(rng.next()), output.quantile(rng.next())];
  const r = 2 * Math.sin(Math.PI * spearman / 6);
  const z1 = rng.normal();
  const z2 = r * z1 + Math.sqrt(1 - r * r) * rng.normal();
  return [prompt.quantile(normalCdf(z1)), output.quantile(normalCdf(z2))];
}

/** Standard normal CDF (Abramowitz-Stegun 7.1.26 through erf). */
export function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const y = 1 -
    (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t +
        0.254829592) * t * Math.exp(-x * x);
  return z >= 0 ? 0.5 * (1 + y) : 0.5 * (1 - y);
}

/** Standard normal quantile (Acklam's rational approximation). */
export function normalQuantile(p: number): number {
  const a = [
    -39.69683028665376,
    220.9460984245205,
    -275.9285104469687,
    138.357751867269,
    -30.66479806614716,
    2.506628277459239,
  ];
  const b = [
    -54.47609879822406,
    161.5858368580409,
    -155.6989798598866,
    66.80131188771972,
    -13.28068155288572,
  ];
  const c = [
    -0.007784894002430293,
    -0.3223964580411365,
    -2.400758277161838,
    -2.549732539343734,
    4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
      ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - lo) return -normalQuantile(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
    (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}
