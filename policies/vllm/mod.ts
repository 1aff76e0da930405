/**
 * `vllm` batcher, as vLLM v1 schedules: running requests first (decodes and unfinished
 * prefill chunks, in scheduler order, preempting from the tail when memory runs out), then
 * waiting requests in scheduler order, each prompt chunked to what is left of one shared
 * token budget. Admission stops at the first waiting request that does not fit.
 *
 * @module
 */

import { z } from "zod";
import { definePlugin, type Plugin } from "../../plugins/define.ts";
import type { Batcher } from "../../core/slots.ts";

const options = z.object({
  maxNumBatchedTokens: z.number().int().min(1).default(2048).describe("token budget per step"),
  maxNumSeqs: z.number().int().min(1).default(256).describe("most requests per step"),
  longPrefillTokenThreshold: z.number().int().min(0).default(0).describe(
    "cap one prompt's chunk at this many tokens (0: no cap)",
  ),
});

/** The `vllm` plugin. */
export const vllmBatcher: Plugin<"batcher", typeof options> = definePlugin({
  name: "vllm",
  slot: "batcher",
  description: "running first, then waiting, chunked prefill under one token budget (vLLM v1)",
  options,
  create(opts): Batcher {
    const cap = opts.longPrefillTokenThreshold || Infinity;
    return {
      plan(_view, order, tools) {
        const b = tools.builder({ tokens: opts.maxNumBatchedTokens, seqs: opts.maxNumSeqs });
        for (const r of order.preempt ?? []) b.preempt(r);
        b.addRunning(order.running, cap);
        // Like vLLM, admit nothing in a step that had to preempt.
        if (b.numPreempted > 0) return b.build();
        for (const req of order.waiting) {
          const n = Math.min(b.remaining(req), b.tokensLeft, cap);
          if (!b.tryAdmit(req, n)) break;
        }
        return b.build();
      },
    };
  },
});
