/**
 * `lightllm-router` batcher: how the LightLLM router that Past-Future runs on builds its
 * batches (Past-Future spec, sections 2.3 and 2.5; the ASPLOS artifact's router). Prompts
 * run whole, in prefill rounds of their own (running decodes pause for the round), up to
 * a prompt-token budget per round, FCFS with a break at the first request admission or
 * the budget refuses. A new round is tried only after `maxWaitTokens` decode steps since
 * the last try (or when nothing runs), so a round stalls decodes for at most one round's
 * prefill before they step again. Decode steps take every running request, preempting
 * (recompute) from the tail of the scheduler's order when memory is short, which resets
 * the count as the router's pause does.
 *
 * @module
 */

import { z } from "zod";
import { definePlugin, type Plugin } from "../../plugins/define.ts";
import type { Batcher } from "../../core/slots.ts";
import { wholePromptBudget } from "../../core/plan_builder.ts";
import type { Plan } from "../../core/types.ts";

const options = z.object({
  batchMaxTokens: z.number().int().min(1).optional().describe(
    "prompt tokens per prefill round (artifact: 18,000; default: the model's maximum length)",
  ),
  maxWaitTokens: z.number().int().min(0).default(2).describe(
    "decode steps between two admission rounds while requests run (artifact: 2)",
  ),
  maxNumSeqs: z.number().int().min(1).default(1000).describe(
    "most running requests (artifact: 1,000)",
  ),
});

/** The `lightllm-router` plugin. */
export const lightllmRouter: Plugin<"batcher", typeof options> = definePlugin({
  name: "lightllm-router",
  slot: "batcher",
  description:
    "whole-prompt prefill rounds every few decode steps (the LightLLM router Past-Future runs on)",
  options,
  create(opts, ctx): Batcher {
    const roundTokens = opts.batchMaxTokens ?? wholePromptBudget(ctx.limits);
    // Decode steps since the last admission round or pause. Steps the engine ran without
    // asking (fast-forwarded decodes) are counted from the gap in step numbers.
    let waited = opts.maxWaitTokens;
    let lastStep = -1;
    return {
      plan(view, order, tools): Plan {
        if (lastStep >= 0 && view.step > lastStep + 1) waited += view.step - lastStep - 1;
        lastStep = view.step;
        let refused: Plan["refused"];
        if (
          order.waiting.length > 0 &&
          (view.running.length === 0 || waited >= opts.maxWaitTokens)
        ) {
          waited = 0;
          const b = tools.builder({
            tokens: roundTokens,
            seqs: Math.max(0, opts.maxNumSeqs - view.running.length),
          });
          for (const r of order.preempt ?? []) b.preempt(r);
          for (const req of order.waiting) {
            const n = b.remaining(req);
            if (n > roundTokens) {
              b.refuse(req, `its ${n} tokens exceed the prefill round budget of ${roundTokens}`);
            } else if (!b.tryAdmit(req, n)) break;
          }
          const plan = b.build();
          if (b.size > 0) return plan;
          refused = plan.refused;
        }
        const d = tools.builder({
          tokens: Math.max(opts.maxNumSeqs, roundTokens),
          seqs: opts.maxNumSeqs,
        });
        for (const r of order.preempt ?? []) d.preempt(r);
        d.addRunning(order.running);
        if (d.numPreempted > 0) waited = 0;
        else if (d.size > 0) waited++;
        const plan = d.build();
        return refused ? { ...plan, refused } : plan;
      },
    };
  },
});
