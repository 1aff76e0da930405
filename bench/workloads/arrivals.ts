/**
 * Arrival processes of open-loop workloads: Poisson, gamma with a coefficient of
 * variation, and everything at once. (Closed-loop clients are run by the simulation
 * driver, core/simulation.ts.)
 *
 * @module
 */

import { UsageError } from "../../core/errors.ts";
import type { Rng } from "../../kernels/sim/rng.ts";

/** An open-loop arrival process. */
export type ArrivalSpec =
  | { kind: "poisson"; rate: number }
  | { kind: "gamma"; rate: number; cv: number }
  | { kind: "burst" };

/** Check an arrival spec; UsageError on a rate or CV out of range. */
export function checkArrival(a: ArrivalSpec): void {
  if (a.kind === "burst") return;
  if (!(a.rate > 0 && a.rate <= 1e6)) {
    throw new UsageError(`--rate must be in (0, 1e6] requests/s, got ${a.rate}`, "rate");
  }
  if (a.kind === "gamma" && !(a.cv > 0 && a.cv <= 100)) {
    throw new UsageError(`--cv must be in (0, 100], got ${a.cv}`, "cv");
  }
}

/** `n` arrival times (seconds, non-decreasing, the first after 0 unless a burst). */
export function arrivalTimes(a: ArrivalSpec, n: number, rng: Rng): number[] {
  checkArrival(a);
  const out = new Array<number>(n);
  let t = 0;
  for (let i = 0; i < n; i++) {
    if (a.kind === "poisson") t += rng.exp(1 / a.rate);
    else if (a.kind === "gamma") {
      // Shape k = 1/cv^2, scale so that the mean gap is 1/rate.
      const k = 1 / (a.cv * a.cv);
      t += rng.gamma(k, 1 / (a.rate * k));
    }
    out[i] = t;
  }
  return out;
}
