/**
 * `oracle-sjf` and `oracle-srtf` schedulers: the Learning-to-Rank paper's upper bounds,
 * ordering by the true output length (shortest job first) or the true remaining length
 * (shortest remaining time first), preemptively as `ltr` does. They read hidden lengths,
 * so they run only with a simulated executor.
 *
 * @module
 */

import { z } from "zod";
import { definePlugin, type Plugin } from "../../plugins/define.ts";
import type { Oracle, PluginContext, Scheduler } from "../../core/slots.ts";
import type { RequestView } from "../../core/types.ts";
import { UsageError } from "../../core/errors.ts";
import { type KeyFiller, PreemptiveOrder } from "../ltr/preemptive_order.ts";
import { QueueStates } from "../ltr/queue_states.ts";

const options = z.object({
  tokenBudget: z.number().int().min(1).default(768).describe("tokens per step (match the batcher)"),
  maxNumSeqs: z.number().int().min(1).default(256).describe("most running requests"),
  watermark: z.number().min(0).max(0.5).default(0.01).describe("fraction of KV blocks kept free"),
});

function requireOracle(name: string, ctx: PluginContext): Oracle {
  if (!ctx.oracle) {
    throw new UsageError(
      `scheduler ${name} reads true output lengths, which exist only in simulation (simulator only): use --executor sim, or choose ltr, mlfq or fcfs`,
      "scheduler",
    );
  }
  return ctx.oracle;
}

function make(name: string, remainingOnly: boolean): Plugin<"scheduler", typeof options> {
  return definePlugin({
    name,
    slot: "scheduler",
    description: remainingOnly
      ? "shortest true remaining output first, preemptive (simulator only)"
      : "shortest true output first, preemptive (simulator only)",
    options,
    create(opts, ctx): Scheduler {
      const oracle = requireOracle(name, ctx);
      const order = new PreemptiveOrder(opts);
      // The true length is read once per request.
      const totals = new QueueStates<number>((r: RequestView) =>
        Math.min(oracle.outputLength(r.id) ?? r.maxTokens, r.maxTokens)
      );
      const fill: KeyFiller = (list, q, out, prev) => {
        const t = totals.of(list, q, prev);
        for (let i = 0; i < t.length; i++) {
          out[i] = remainingOnly ? t[i] - list[i].outputTokens.length : t[i];
        }
        return true;
      };
      return {
        order: (view) => order.orderBy(view, fill),
        onFinish: (req) => totals.delete(req.id),
      };
    },
  });
}

/** The `oracle-sjf` plugin. */
export const oracleSjf: Plugin<"scheduler", typeof options> = make("oracle-sjf", false);

/** The `oracle-srtf` plugin. */
export const oracleSrtf: Plugin<"scheduler", typeof options> = make("oracle-srtf", true);
