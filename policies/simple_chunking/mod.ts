/**
 * `simple-chunking` batcher: the "chunked prefills only, no hybrid batching" ablation of
 * Sarathi-Serve. Steps alternate between a prefill step (prompt chunks under the token
 * budget, no decodes) and a decode step (every running decode, no prompt tokens)
 * (Sarathi-Serve spec, section 1.5).
 *
 * @module
 */

import { z } from "zod";
import { definePlugin, type Plugin } from "../../plugins/define.ts";
import type { Batcher } from "../../core/slots.ts";
import type { Plan } from "../../core/types.ts";

const options = z.object({
  chunkSize: z.number().int().min(1).default(512).describe("prompt tokens per prefill step"),
  maxNumSeqs: z.number().int().min(1).default(128).describe("most running requests"),
});

/** The `simple-chunking` plugin. */
export const simpleChunking: Plugin<"batcher", typeof options> = definePlugin({
  name: "simple-chunking",
  slot: "batcher",
  description: "alternate prefill-chunk steps and decode steps (Sarathi-Serve ablation)",
  options,
  create(opts): Batcher {
    let lastWasPrefill = false;
    return {
      plan(view, order, tools): Plan {
        let decodes = 0, prompts = 0;
        for (const r of view.running) {
          if (r.numTokens - r.numComputedTokens > 1) prompts++;
          else decodes++;
        }
        const wantPrefill = (prompts > 0 || view.waiting.length > 0) &&
          (!lastWasPrefill || decodes === 0);
        if (wantPrefill) {
          const b = tools.builder({ tokens: opts.chunkSize, seqs: opts.maxNumSeqs });
          for (const r of order.preempt ?? []) b.preempt(r);
          for (const req of order.running) {
            if (b.has(req) || b.remaining(req) <= 1) continue;
            const n = Math.min(b.remaining(req), b.tokensLeft);
            if (n <= 0) break;
            b.tryAdd(req, n);
          }
          let slots = opts.maxNumSeqs - (view.running.length - b.numPreempted);
          for (const req of order.waiting) {
            const n = Math.min(b.remaining(req), b.tokensLeft);
            if (slots <= 0 || n <= 0 || !b.tryAdmit(req, n)) break;
            slots--;
          }
          if (b.size > 0 || decodes === 0) {
            lastWasPrefill = b.size > 0;
            return b.build();
          }
        }
        lastWasPrefill = false;
        const d = tools.builder({ tokens: opts.maxNumSeqs, seqs: opts.maxNumSeqs });
        for (const r of order.preempt ?? []) d.preempt(r);
        for (const req of order.running) {
          if (d.has(req) || d.remaining(req) > 1) continue;
          if (d.addOrPreempt(req, 1, order.running) === "no-budget") break;
        }
        return d.build();
      },
    };
  },
});
