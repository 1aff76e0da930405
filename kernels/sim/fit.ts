/**
 * Fitting a linear step-time profile ({@link LinearProfile}) to measured steps: least
 * squares on relative error with non-negative coefficients (projected coordinate
 * descent), and the mean absolute percentage error of a model on measured steps.
 *
 * @module
 */

import type { CostModel } from "../../core/slots.ts";
import { type LinearProfile, profileFeatures, type StepShape } from "./cost_model.ts";

/** One measured step. */
export interface StepSample {
  /** The batch's shape. */
  shape: StepShape;
  /** Measured seconds. */
  seconds: number;
}

/** Fit a non-negative linear profile minimising the squared relative error. */
export function fitLinearProfile(
  samples: readonly StepSample[],
  name: string,
  model: string,
): LinearProfile {
  if (samples.length < 5) {
    throw new Error(`need at least 5 measured steps to fit, got ${samples.length}`);
  }
  const X = samples.map((s) => profileFeatures(s.shape).map((f) => f / s.seconds));
  const y = samples.map(() => 1);
  const k = 5;
  // Column scaling for conditioning.
  const scale = Array.from(
    { length: k },
    (_, j) => Math.max(1e-12, Math.sqrt(X.reduce((a, r) => a + r[j] * r[j], 0))),
  );
  const A = X.map((r) => r.map((v, j) => v / scale[j]));
  const w = new Array<number>(k).fill(0);
  const resid = y.slice();
  for (let iter = 0; iter < 5000; iter++) {
    let change = 0;
    for (let j = 0; j < k; j++) {
      let num = 0, den = 0;
      for (let i = 0; i < A.length; i++) {
        num += A[i][j] * (resid[i] + A[i][j] * w[j]);
        den += A[i][j] * A[i][j];
      }
      const nw = Math.max(0, den > 0 ? num / den : 0);
      const d = nw - w[j];
      if (d !== 0) {
        for (let i = 0; i < A.length; i++) resid[i] -= A[i][j] * d;
        w[j] = nw;
        change = Math.max(change, Math.abs(d));
      }
    }
    if (change < 1e-12) break;
  }
  const c = w.map((v, j) => v / scale[j]);
  return {
    name,
    model,
    base: c[0],
    perToken: c[1],
    perSeq: c[2],
    perPair: c[3],
    perDecodeContext: c[4],
  };
}

/** Mean absolute percentage error of `model` on measured steps (0.05 = 5%). */
export function meanAbsPctError(model: CostModel, samples: readonly StepSample[]): number {
  if (samples.length === 0) return 0;
  let s = 0;
  for (const x of samples) s += Math.abs(model.stepTime(x.shape) / x.seconds - 1);
  return s / samples.length;
}
