/**
 * `watermark` admission (vLLM's "aggressive" admission): a waiting request may start when,
 * after its first chunk's blocks, a small fraction of the pool stays free. Output growth
 * is not reserved; running out later is handled by recompute preemption.
 *
 * @module
 */

import { z } from "zod";
import { definePlugin, type Plugin } from "../../plugins/define.ts";
import type { Admission } from "../../core/slots.ts";

const options = z.object({
  watermark: z.number().min(0).max(0.5).default(0.01).describe(
    "fraction of KV blocks kept free at admission",
  ),
});

/** The `watermark` plugin. */
export const watermark: Plugin<"admission", typeof options> = definePlugin({
  name: "watermark",
  slot: "admission",
  description: "admit while a watermark of blocks stays free (vLLM, aggressive)",
  options,
  create(opts): Admission {
    return {
      admit: (_req, view, s) =>
        s.freeBlocks - s.blocksNeeded >= opts.watermark * view.kv.totalBlocks,
    };
  },
});
