/**
 * `priority` scheduler: the request's `priority` field first (lower is sooner, as in
 * vLLM), arrival time second. The lowest-priority running request is preempted first.
 *
 * @module
 */

import { definePlugin, type Plugin } from "../../plugins/define.ts";
import type { Scheduler } from "../../core/slots.ts";
import type { RequestView } from "../../core/types.ts";

const byPriority = (a: RequestView, b: RequestView): number =>
  a.priority - b.priority || a.arrivalTime - b.arrivalTime;

/** The `priority` plugin. */
export const priority: Plugin<"scheduler"> = definePlugin({
  name: "priority",
  slot: "scheduler",
  description: "serve by request priority (lower first), then arrival",
  create(): Scheduler {
    return {
      order: (view) => ({
        running: [...view.running].sort(byPriority),
        waiting: [...view.waiting].sort(byPriority),
      }),
    };
  },
});
