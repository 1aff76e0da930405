/**
 * `past-future` admission (LightLLM, ASPLOS'25). The past: a window of finished output
 * lengths; each running request's total length is drawn from it conditioned on what it
 * has already generated, a new request's unconditionally. The future: the exact peak KV
 * occupancy of the batch under those lengths, over a few Monte-Carlo scenarios combined
 * by their max. A request is admitted while the estimate stays under the pool less a
 * reserve (Past-Future spec, sections 2.2-2.3). When the estimate was wrong, the batcher
 * preempts from the tail of the scheduler's running order (the newest under `fcfs`).
 *
 * Defaults follow the 2024 implementation (window 200, 200 samples over at most 5
 * scenarios, 5 % reserve) with the 2025 prior of 1,024 tokens.
 *
 * @module
 */

import { z } from "zod";
import { definePlugin, type Plugin } from "../../plugins/define.ts";
import type { Admission } from "../../core/slots.ts";
import type { FinishReason, RequestView } from "../../core/types.ts";
import { Rng } from "../../kernels/sim/rng.ts";
import { LengthHistory } from "./history.ts";
import { PeakAdmission } from "./peak.ts";

const options = z.object({
  window: z.number().int().min(1).max(100000).default(200).describe(
    "finished output lengths kept (2024 code 200, ASPLOS artifact 40)",
  ),
  initialLength: z.number().int().min(1).default(1024).describe(
    "prior: window/2 copies of this length before anything has finished",
  ),
  minSamples: z.number().int().min(1).default(200).describe(
    "scenarios = min(maxScenarios, floor(minSamples / running) + 1)",
  ),
  maxScenarios: z.number().int().min(1).max(64).default(5).describe("most Monte-Carlo scenarios"),
  aggregation: z.enum(["max", "mean"]).default("max").describe(
    "how scenario peaks combine: max (the paper's, pessimistic) or mean",
  ),
  reserve: z.number().min(0).max(0.5).default(0.05).describe("fraction of KV kept as head-room"),
  recordAborted: z.boolean().default(false).describe(
    "also record requests that were aborted or failed in the history",
  ),
});

/** The `past-future` admission, with its history exposed for tests and reports. */
export interface PastFutureAdmission extends Admission {
  /** Finished output lengths it draws from. */
  readonly history: LengthHistory;
}

/** The `past-future` plugin. */
export const pastFuture: Plugin<"admission", typeof options> = definePlugin({
  name: "past-future",
  slot: "admission",
  description:
    "admit by the future peak KV use, from a history of finished lengths (LightLLM Past-Future)",
  options,
  create(opts, ctx): PastFutureAdmission {
    const history = new LengthHistory(opts.window, opts.initialLength);
    const rng = new Rng(ctx.seed ^ 0x5a17f00d);
    const cap = (r: RequestView): number =>
      Math.min(r.maxTokens, ctx.limits.maxModelLen - r.promptTokens.length);
    const peak = new PeakAdmission(
      {
        scenarios: (n) =>
          n === 0 ? 1 : Math.min(opts.maxScenarios, Math.floor(opts.minSamples / n) + 1),
        remaining(r, isNew) {
          const g = r.outputTokens.length;
          const max = Math.max(g + 1, cap(r));
          const total = isNew && g === 0
            ? history.draw(rng, max)
            : history.drawConditional(rng, g, max);
          return Math.max(1, total - g);
        },
      },
      opts.reserve,
      opts.aggregation,
    );
    return {
      history,
      admit: (req, view, s) => peak.admit(req, view, s.admitted),
      onFinish(req: RequestView, reason: FinishReason): void {
        if (reason === "stop" || reason === "length" || opts.recordAborted) {
          history.push(req.outputTokens.length);
        }
      },
      exportState: () => ({ pastFutureHistory: history.values() }),
      importState(state: unknown): void {
        const h = (state as { pastFutureHistory?: unknown })?.pastFutureHistory;
        if (Array.isArray(h)) {
          for (const v of h) if (Number.isInteger(v) && v > 0) history.push(v);
        }
      },
    };
  },
});
