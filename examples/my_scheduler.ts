/**
 * A third-party scheduler: shortest prompt first. Load it with
 * `deno run -A main.ts generate --plugin ./examples/my_scheduler.ts --scheduler shortest-prompt-first ...`.
 *
 * Short prompts finish their prefill sooner, so serving them first lowers the mean time
 * to first token (at the risk of starving long prompts; `maxWaitSteps` bounds that).
 *
 * @module
 */

import { z } from "npm:zod@4.6.7";
import { definePlugin } from "../mod.ts";
import type { RequestView, Scheduler } from "../mod.ts";

const options = z.object({
  maxWaitSteps: z.number().int().min(1).default(1000).describe(
    "serve a request first once it waited this many steps, whatever its length",
  ),
});

/** Shortest-prompt-first scheduler. */
export default definePlugin({
  name: "shortest-prompt-first",
  slot: "scheduler",
  description: "serve the waiting request with the shortest prompt first",
  options,
  create(opts): Scheduler {
    const arrivedAt = new Map<string, number>(); // step at which we first saw a request
    return {
      order(view) {
        for (const r of view.waiting) if (!arrivedAt.has(r.id)) arrivedAt.set(r.id, view.step);
        const starving = (r: RequestView) => view.step - arrivedAt.get(r.id)! >= opts.maxWaitSteps;
        const waiting = [...view.waiting].sort((a, b) =>
          Number(starving(b)) - Number(starving(a)) ||
          a.promptTokens.length - b.promptTokens.length ||
          a.arrivalTime - b.arrivalTime
        );
        return { running: view.running, waiting };
      },
      onFinish(req) {
        arrivedAt.delete(req.id);
      },
    };
  },
});
