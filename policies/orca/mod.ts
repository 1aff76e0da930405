/**
 * `orca` batcher: iteration-level batching as in Orca. Every step holds all running
 * decodes plus any newly admitted requests' whole prompts (a hybrid batch: no stall, but
 * a long step). Each admitted request reserves KV for its longest possible context, so
 * the batch stays small (Sarathi-Serve spec, section 1.5, pitfall 8).
 *
 * @module
 */

import { definePlugin, type Plugin } from "../../plugins/define.ts";
import type { Batcher } from "../../core/slots.ts";
import { wholePromptBudget } from "../../core/plan_builder.ts";
import {
  outstandingBlocks,
  reservedBlocks,
  type ReservingOptions,
  reservingOptions,
} from "./reserve.ts";

const options: ReservingOptions = reservingOptions(
  "most running requests (paper: 16 for 7B and 34B models, 8 for 70B and 180B)",
);

/** The `orca` plugin. */
export const orca: Plugin<"batcher", typeof options> = definePlugin({
  name: "orca",
  slot: "batcher",
  description:
    "iteration-level batching: decodes plus whole new prefills, worst-case KV reservation (Orca)",
  options,
  create(opts, ctx): Batcher {
    const tokens = opts.maxNumBatchedTokens ?? wholePromptBudget(ctx.limits);
    return {
      plan(view, order, tools) {
        const b = tools.builder({ tokens, seqs: opts.maxNumSeqs });
        for (const r of order.preempt ?? []) b.preempt(r);
        const asked = b.numPreempted;
        // What the running requests may still grow into is spoken for.
        let headroom = b.freeBlocks -
          outstandingBlocks(view, opts.reserve, (r) => b.isPreempted(r));
        b.addRunning(order.running);
        if (b.numPreempted > asked) return b.build();
        let slots = opts.maxNumSeqs - (view.running.length - b.numPreempted);
        for (const req of order.waiting) {
          if (slots <= 0) break;
          const need = reservedBlocks(req, view, opts.reserve);
          if (need > headroom) break;
          if (!b.tryAdmit(req, b.remaining(req))) break;
          headroom -= need;
          slots--;
        }
        return b.build();
      },
    };
  },
});
