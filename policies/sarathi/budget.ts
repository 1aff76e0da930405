/**
 * Choosing Sarathi-Serve's token budget for a time-between-tokens SLO from a cost model:
 * the largest multiple of a GEMM tile whose worst predicted step (any split of the budget
 * between decodes and one prefill chunk) stays under the SLO with a safety margin
 * (Sarathi-Serve spec, section 1.3).
 *
 * @module
 */

import type { CostModel } from "../../core/slots.ts";

/** What {@link autoTokenBudget} needs. */
export interface AutoBudgetInput {
  /** The step-time model. */
  costModel: CostModel;
  /** Time-between-tokens target, seconds. */
  tbtSlo: number;
  /** Budgets are multiples of this (tile quantization makes other sizes wasteful). */
  tile: number;
  /** Largest budget to consider. */
  maxBudget: number;
  /** Most decodes a step can hold (the batch-size cap). */
  maxNumSeqs: number;
  /** KV tokens each decode reads (a high percentile of context length). */
  decodeContext: number;
  /** Fraction of the SLO a step may use. */
  safety: number;
}

/** The worst predicted step time for budget `b` over the decode/prefill splits tried. */
export function worstStepTime(b: number, i: AutoBudgetInput): number {
  const maxD = Math.min(i.maxNumSeqs, b);
  // 17 splits from all-prefill to all-decode are enough: the cost is piecewise linear.
  const splits = 16;
  let worst = 0;
  for (let k = 0; k <= splits; k++) {
    const d = Math.round((maxD * k) / splits);
    const p = b - d;
    const t = i.costModel.stepTime({
      prefillTokens: p,
      // The chunk is a late chunk of a long prompt: it re-reads that much earlier KV.
      prefillContext: p > 0 ? i.decodeContext : 0,
      decodes: d,
      decodeContext: d * i.decodeContext,
    });
    if (t > worst) worst = t;
  }
  return worst;
}

/**
 * The largest tile multiple up to `maxBudget` whose worst step fits `safety * tbtSlo`;
 * one tile when even that does not fit.
 */
export function autoTokenBudget(i: AutoBudgetInput): number {
  const limit = i.safety * i.tbtSlo;
  for (let b = Math.floor(i.maxBudget / i.tile) * i.tile; b >= i.tile; b -= i.tile) {
    if (worstStepTime(b, i) <= limit) return b;
  }
  return i.tile;
}
