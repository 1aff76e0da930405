/**
 * `oracle` admission: the Past-Future peak formula with every request's true remaining
 * length and no reserve, the "theoretical optimum" of the Past-Future paper (spec,
 * section 2.5). It reads hidden lengths, so it runs only with a simulated executor.
 *
 * @module
 */

import { z } from "zod";
import { definePlugin, type Plugin } from "../../plugins/define.ts";
import type { Admission } from "../../core/slots.ts";
import { UsageError } from "../../core/errors.ts";
import { PeakAdmission } from "../past_future/peak.ts";

const options = z.object({
  reserve: z.number().min(0).max(0.5).default(0).describe("fraction of KV kept as head-room"),
});

/** The `oracle` plugin. */
export const oracleAdmission: Plugin<"admission", typeof options> = definePlugin({
  name: "oracle",
  slot: "admission",
  description: "admit by the future peak KV use under the true output lengths (simulator only)",
  options,
  create(opts, ctx): Admission {
    const oracle = ctx.oracle;
    if (!oracle) {
      throw new UsageError(
        "admission oracle reads the true output lengths, which exist only in simulation (simulator only): use --executor sim, or choose past-future, watermark or reserve-max",
        "admission",
      );
    }
    const peak = new PeakAdmission(
      {
        scenarios: () => 1,
        remaining(r) {
          const total = Math.min(oracle.outputLength(r.id) ?? r.maxTokens, r.maxTokens);
          return Math.max(1, total - r.outputTokens.length);
        },
      },
      opts.reserve,
      "max",
    );
    return { admit: (req, view, s) => peak.admit(req, view, s.admitted) };
  },
});
