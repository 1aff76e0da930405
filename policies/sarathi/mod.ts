/**
 * `sarathi` batcher: Sarathi-Serve's stall-free batching under a per-step token budget.
 * Every running decode gets its token first (decodes are never paused for a prefill),
 * then prompts already under way continue, then new requests start, each prompt cut to
 * what is left of the budget (Sarathi-Serve spec, section 1.2). With
 * `tokenBudget: "auto"` the budget is the largest tile multiple whose predicted step fits
 * the TBT SLO (section 1.3).
 *
 * @module
 */

import { z } from "zod";
import { definePlugin, type Plugin } from "../../plugins/define.ts";
import type { Batcher, PluginContext } from "../../core/slots.ts";
import type { RequestView } from "../../core/types.ts";
import { UsageError } from "../../core/errors.ts";
import { autoTokenBudget } from "./budget.ts";

const options = z.object({
  tokenBudget: z.union([z.number().int().min(1).max(1 << 20), z.literal("auto")]).default(512)
    .describe(
      "tokens per step, decodes included (paper: 512 strict SLO, 2048 relaxed); auto: from the cost model and tbtSlo",
    ),
  maxNumSeqs: z.number().int().min(1).default(128).describe("most running requests"),
  tbtSlo: z.number().positive().max(60).default(0.1).describe(
    "time-between-tokens SLO in seconds, for tokenBudget auto",
  ),
  tile: z.number().int().min(1).max(4096).default(128).describe(
    "auto budgets are multiples of this GEMM tile",
  ),
  autoContext: z.number().int().min(0).default(2048).describe(
    "KV tokens per decode assumed by tokenBudget auto (a high percentile of context)",
  ),
  safety: z.number().gt(0).max(1).default(0.9).describe(
    "fraction of tbtSlo a step may take, for tokenBudget auto",
  ),
});

/** Options of the `sarathi` batcher, defaults filled in. */
export type SarathiOptions = z.output<typeof options>;

/** The token budget the options ask for, resolving `auto` with the context's cost model. */
export function resolveTokenBudget(opts: SarathiOptions, ctx: PluginContext): number {
  if (opts.tokenBudget !== "auto") return opts.tokenBudget;
  if (!ctx.costModel) {
    throw new UsageError(
      "--batcher.token-budget auto needs a step-time model, which this executor does not offer; use a simulated executor (--executor sim) or give a number",
      "token-budget",
    );
  }
  return autoTokenBudget({
    costModel: ctx.costModel,
    tbtSlo: opts.tbtSlo,
    tile: opts.tile,
    maxBudget: Math.min(ctx.limits.maxBatchTokens, ctx.limits.maxModelLen),
    maxNumSeqs: opts.maxNumSeqs,
    decodeContext: opts.autoContext,
    safety: opts.safety,
  });
}

/** The `sarathi` plugin. */
export const sarathi: Plugin<"batcher", typeof options> = definePlugin({
  name: "sarathi",
  slot: "batcher",
  description:
    "stall-free batching: decodes first, then chunked prefills under a token budget (Sarathi-Serve)",
  options,
  create(opts, ctx): Batcher & { readonly tokenBudget: number } {
    const budget = resolveTokenBudget(opts, ctx);
    if (opts.tokenBudget === "auto") {
      ctx.log(`token budget ${budget} for a ${opts.tbtSlo} s TBT SLO`);
    }
    const partial: RequestView[] = [];
    return {
      tokenBudget: budget,
      plan(view, order, tools) {
        const b = tools.builder({ tokens: budget, seqs: opts.maxNumSeqs });
        for (const r of order.preempt ?? []) b.preempt(r);
        const asked = b.numPreempted;
        partial.length = 0;
        // Phase 1a: one token for every decode, preempting from the tail when memory runs out.
        for (const req of order.running) {
          if (b.has(req)) continue;
          if (b.remaining(req) > 1) {
            partial.push(req);
            continue;
          }
          if (b.addOrPreempt(req, 1, order.running) === "no-budget") break;
        }
        // Phase 1b: prompts already under way, cut to what is left.
        for (const req of partial) {
          if (b.has(req)) continue;
          const n = Math.min(b.remaining(req), b.tokensLeft);
          if (n <= 0 || b.seqsLeft <= 0) break;
          if (!b.tryAdd(req, n)) {
            // Short of memory: take what fits rather than preempting a prompt in progress.
            const bs = view.kv.blockSize;
            const fit = (req.numBlocks + b.freeBlocks) * bs - req.numComputedTokens;
            if (fit > 0) b.tryAdd(req, Math.min(n, fit));
          }
        }
        // Phase 2: new requests in scheduler order; none in a step that ran out of memory.
        if (b.numPreempted > asked) return b.build();
        let slots = opts.maxNumSeqs - (view.running.length - b.numPreempted);
        for (const req of order.waiting) {
          if (slots <= 0) break;
          const n = Math.min(b.remaining(req), b.tokensLeft);
          if (n <= 0 || !b.tryAdmit(req, n)) break;
          slots--;
        }
        return b.build();
      },
    };
  },
});
