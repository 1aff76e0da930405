/**
 * `reserve-max` admission (the "conservative" baseline of Past-Future, as TGI and
 * LightLLM's older router do): every request reserves its prompt plus its whole output
 * cap, so a request is admitted only when all reservations fit the pool. No preemption
 * ever happens, at the price of small batches (Past-Future spec, section 2.5).
 *
 * @module
 */

import { z } from "zod";
import { definePlugin, type Plugin } from "../../plugins/define.ts";
import type { Admission } from "../../core/slots.ts";
import type { EngineView, RequestView } from "../../core/types.ts";

const options = z.object({
  outputBudget: z.number().int().min(0).default(0).describe(
    "output tokens reserved per request; 0: the request's max_tokens",
  ),
});

/** The `reserve-max` plugin. */
export const reserveMax: Plugin<"admission", typeof options> = definePlugin({
  name: "reserve-max",
  slot: "admission",
  description: "reserve prompt plus max output for every request (conservative)",
  options,
  create(opts): Admission {
    const blocks = (r: RequestView, view: EngineView): number => {
      const out = opts.outputBudget || r.maxTokens;
      const tokens = Math.min(view.limits.maxModelLen, r.promptTokens.length + out);
      // A reservation larger than the pool could never be met: such a request runs alone.
      return Math.min(view.kv.totalBlocks, Math.ceil(tokens / view.kv.blockSize));
    };
    let step = -1, base = 0;
    return {
      admit(req, view, s) {
        if (view.step !== step) {
          step = view.step;
          base = 0;
          for (const r of view.running) base += blocks(r, view);
        }
        let total = base + blocks(req, view);
        for (const r of s.admitted) total += blocks(r, view);
        return total <= view.kv.totalBlocks;
      },
    };
  },
});
