/**
 * `smartspec` speculation plugin (SmartSpec, spec section 2): speculative decoding whose
 * draft length follows the load. Every `interval` steps it picks the one length `k` for the
 * batch (0 turns speculation off) that maximizes the predicted goodput: expected generated
 * tokens over the predicted step time, from the executor's cost model, an estimate of the
 * acceptance rate, and the drafting cost. The acceptance rate is a moving average (0.85
 * old, 0.15 new, starting at 0.7, as in the authors' code) of what verification accepted.
 *
 * Drafts come from a simulated draft model (`--speculation.draft sim`, see `sim-draft`) or
 * from prompt lookup (`ngram`, free to propose). It needs a step-time model: the `sim`
 * executor offers one.
 *
 * @module
 */

import { z } from "zod";
import { definePlugin, type Plugin } from "../../plugins/define.ts";
import type { Speculator } from "../../core/slots.ts";
import { UsageError } from "../../core/errors.ts";
import { SimDraftModel } from "../speculation/sim_draft.ts";
import { promptLookup } from "../speculation/ngram.ts";
import { bestDraftLength } from "./goodput.ts";

const options = z.object({
  draft: z.enum(["sim", "ngram"]).default("sim").describe(
    "draft source: a simulated draft model, or prompt lookup",
  ),
  maxK: z.number().int().min(0).max(32).default(8).describe("longest draft"),
  interval: z.number().int().min(1).default(20).describe("steps between choices of k"),
  initialAcceptance: z.number().min(0).max(1).default(0.7).describe(
    "acceptance rate assumed before any draft is verified",
  ),
  bias: z.number().min(0).default(1.1).describe(
    "plain decoding's goodput is multiplied by this: the margin speculation must beat",
  ),
  acceptance: z.number().min(0).max(1).default(0.7).describe(
    "draft sim: probability that a draft token is the target's",
  ),
  draftCost: z.number().min(0).default(0.1).describe(
    "draft sim: one draft pass, as a fraction of the target's decode step",
  ),
  maxNgram: z.number().int().min(1).max(16).default(3).describe("draft ngram: longest n-gram"),
  probe: z.boolean().default(true).describe(
    "while off, draft one token at each choice to keep the acceptance estimate current",
  ),
});

/** What the plugin has chosen and learnt, exposed for reports and tests. */
export interface SmartSpecState {
  /** The draft length in use. */
  k: number;
  /** The acceptance-rate estimate. */
  alpha: number;
}

/** The `smartspec` plugin. */
export const smartspec: Plugin<"speculation", typeof options> = definePlugin({
  name: "smartspec",
  slot: "speculation",
  description: "speculative decoding with the draft length that maximizes goodput (SmartSpec)",
  options,
  create(opts, ctx): Speculator & { readonly state: SmartSpecState } {
    const cost = ctx.costModel;
    if (!cost) {
      throw new UsageError(
        "smartspec needs a step-time model to predict goodput: run it on --executor sim",
        "--speculation",
      );
    }
    const sim = opts.draft === "sim" ? new SimDraftModel(opts, ctx, "smartspec") : undefined;
    const lookup = { maxNgram: opts.maxNgram, minNgram: 1, window: 4096 };
    const state: SmartSpecState = { k: 0, alpha: opts.initialAcceptance };
    // Moving averages of accepted tokens and of rejections per step; their ratio is the
    // acceptance rate (an average of per-step ratios reads low when batches are small).
    let accepts = opts.initialAcceptance, rejects = 1 - opts.initialAcceptance;
    let sinceChoice = Infinity;
    return {
      state,
      propose(view, decodes) {
        let context = 0;
        for (const r of decodes) context += r.numTokens;
        if (sinceChoice >= opts.interval) {
          const free = view.kv.freeBlocks * view.kv.blockSize;
          const batch = { decodes: decodes.length, context, free };
          const draftSeconds = (k: number) => sim?.seconds(decodes.length, context, k) ?? 0;
          state.k = bestDraftLength(batch, state.alpha, opts.maxK, cost, draftSeconds, opts.bias);
          sinceChoice = 0;
        }
        sinceChoice++;
        // Off, it still drafts one token on the step of each choice, so that the estimate
        // keeps learning (without feedback a low estimate would turn speculation off for good).
        const k = state.k > 0 ? state.k : opts.probe && sinceChoice === 1 ? 1 : 0;
        if (k === 0) return { drafts: [] };
        if (sim) {
          return {
            drafts: decodes.map((r) => sim.draft(r, k)),
            seconds: sim.seconds(decodes.length, context, k),
          };
        }
        return { drafts: decodes.map((r) => promptLookup(r, k, lookup)) };
      },
      onVerified(results) {
        // Each draft token is a trial until the first rejection: the acceptance rate is
        // accepted / (accepted + rejections). (Accepted over proposed, as the authors' code
        // measures it, counts the tokens after a rejection as failures and reads low.)
        let accepted = 0, rejected = 0;
        for (const r of results) {
          accepted += r.accepted;
          if (r.accepted < r.proposed) rejected++;
        }
        if (accepted + rejected === 0) return;
        accepts = 0.85 * accepts + 0.15 * accepted;
        rejects = 0.85 * rejects + 0.15 * rejected;
        state.alpha = accepts / (accepts + rejects);
      },
      exportState: () => ({ accepts, rejects }),
      importState(s) {
        const { accepts: a, rejects: r } = (s ?? {}) as { accepts?: unknown; rejects?: unknown };
        if (typeof a === "number" && typeof r === "number" && a >= 0 && r >= 0 && a + r > 0) {
          [accepts, rejects] = [a, r];
          state.alpha = a / (a + r);
        }
      },
    };
  },
});
