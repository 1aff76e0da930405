/**
 * `fastertransformer` batcher: request-level batching. While any request is running, the
 * batch only decodes; new requests start together once the batch has drained, each with
 * its whole prompt and a worst-case KV reservation (Sarathi-Serve spec, section 1.5).
 *
 * @module
 */

import { definePlugin, type Plugin } from "../../plugins/define.ts";
import type { Batcher } from "../../core/slots.ts";
import { wholePromptBudget } from "../../core/plan_builder.ts";
import { reservedBlocks, type ReservingOptions, reservingOptions } from "../orca/reserve.ts";

const options: ReservingOptions = reservingOptions("requests per batch");

/** The `fastertransformer` plugin. */
export const fasterTransformer: Plugin<"batcher", typeof options> = definePlugin({
  name: "fastertransformer",
  slot: "batcher",
  description:
    "request-level batching: a new batch starts only when the last one has drained (FasterTransformer)",
  options,
  create(opts, ctx): Batcher {
    const tokens = opts.maxNumBatchedTokens ?? wholePromptBudget(ctx.limits);
    return {
      plan(view, order, tools) {
        const b = tools.builder({ tokens, seqs: opts.maxNumSeqs });
        for (const r of order.preempt ?? []) b.preempt(r);
        if (view.running.length > b.numPreempted) {
          b.addRunning(order.running);
          return b.build();
        }
        let headroom = b.freeBlocks;
        for (const req of order.waiting) {
          const need = reservedBlocks(req, view, opts.reserve);
          if (need > headroom) break;
          if (!b.tryAdmit(req, b.remaining(req))) break;
          headroom -= need;
        }
        return b.build();
      },
    };
  },
});
