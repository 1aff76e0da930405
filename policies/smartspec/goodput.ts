/**
 * SmartSpec's goodput (spec section 2(a)): the tokens a step actually generates per second,
 * accepted drafts plus one token per request, over the whole step (drafting and
 * verification). With each draft token accepted independently with probability `alpha`,
 * a request proposing `k` tokens generates `(1 - alpha^(k+1)) / (1 - alpha)` on average.
 *
 * @module
 */

import type { CostModel } from "../../core/slots.ts";
import { addVerify, type StepShape } from "../../kernels/sim/cost_model.ts";

/** Expected tokens generated per request for `k` draft tokens at acceptance `alpha`. */
export function expectedTokens(k: number, alpha: number): number {
  if (alpha >= 1) return k + 1;
  return (1 - alpha ** (k + 1)) / (1 - alpha);
}

/** The batch a draft length is chosen for. */
export interface BatchState {
  /** Decoding requests. */
  decodes: number;
  /** Their KV tokens, summed. */
  context: number;
  /** Free KV tokens: the drafts' positions must fit (the out-of-memory guard). */
  free: number;
}

/** Seconds of the step that verifies `k` drafts per request (k = 0: a plain decode step). */
export function verifySeconds(cost: CostModel, b: BatchState, k: number): number {
  const shape: StepShape = { prefillTokens: 0, prefillContext: 0, decodes: 0, decodeContext: 0 };
  // The batch's requests as one of average context each (the shape is linear in them).
  const context = b.decodes > 0 ? b.context / b.decodes : 0;
  for (let i = 0; i < b.decodes; i++) addVerify(shape, context, k);
  if (shape.prefillTokens === 0) delete shape.prefillPairs;
  return cost.stepTime(shape);
}

/**
 * The draft length in `0 .. maxK` with the best goodput: scanning up from 0 while goodput
 * rises (it is unimodal in k), with plain decoding's goodput multiplied by `bias` (the
 * margin speculation must beat), and no length whose draft positions (with a 10% margin)
 * would not fit in the free KV. (The authors' guard compares the whole batch's context
 * with the pool's capacity, which turns speculation off whenever the cache is nearly
 * full; here the running requests' KV is already placed and only the drafts need room.)
 */
export function bestDraftLength(
  b: BatchState,
  alpha: number,
  maxK: number,
  cost: CostModel,
  draftSeconds: (k: number) => number,
  bias: number,
): number {
  let best = -Infinity, bestK = 0;
  for (let k = 0; k <= maxK; k++) {
    if (k > 0 && b.decodes * k * 1.1 > b.free) break;
    const seconds = draftSeconds(k) + verifySeconds(cost, b, k);
    let goodput = b.decodes * expectedTokens(k, alpha) / seconds;
    if (k === 0) goodput *= bias;
    if (goodput > best) {
      best = goodput;
      bestK = k;
    } else break;
  }
  return bestK;
}
