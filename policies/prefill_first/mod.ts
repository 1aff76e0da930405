/**
 * `prefill-first` batcher, as vLLM v0 schedules without chunked prefill: whenever a
 * waiting request's whole prompt fits, run a step of whole prefills only (running decodes
 * pause: the "generation stall" Sarathi-Serve removes); decode only when no prefill fits.
 *
 * @module
 */

import { z } from "zod";
import { definePlugin, type Plugin } from "../../plugins/define.ts";
import type { Batcher } from "../../core/slots.ts";
import { wholePromptBudget } from "../../core/plan_builder.ts";

const options = z.object({
  maxNumBatchedTokens: z.number().int().min(1).optional().describe(
    "token budget of a prefill step (default: the model's maximum length)",
  ),
  maxNumSeqs: z.number().int().min(1).default(256).describe("most running requests"),
});

/** The `prefill-first` plugin. */
export const prefillFirst: Plugin<"batcher", typeof options> = definePlugin({
  name: "prefill-first",
  slot: "batcher",
  description: "whole prefills first, decodes only when no prefill fits (vLLM v0)",
  options,
  create(opts, ctx): Batcher {
    const tokens = opts.maxNumBatchedTokens ?? wholePromptBudget(ctx.limits);
    return {
      plan(view, order, tools) {
        const b = tools.builder({
          tokens,
          seqs: Math.max(0, opts.maxNumSeqs - view.running.length),
        });
        for (const r of order.preempt ?? []) b.preempt(r);
        for (const req of order.waiting) {
          const n = b.remaining(req);
          // vLLM v0 drops a prompt longer than a whole prefill step may hold.
          if (n > tokens) b.refuse(req, `its ${n} tokens exceed the prefill budget of ${tokens}`);
          else if (!b.tryAdmit(req, n)) break;
        }
        if (b.size > 0) return b.build();
        const refused = b.build().refused;
        const d = tools.builder({ tokens, seqs: opts.maxNumSeqs });
        for (const r of order.preempt ?? []) d.preempt(r);
        d.addRunning(order.running);
        return { ...d.build(), ...(refused ? { refused } : {}) };
      },
    };
  },
});
