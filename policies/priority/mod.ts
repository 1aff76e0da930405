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
    // The engine hands out the same queue arrays until a queue changes: sort only then.
    const sorted = new WeakMap<readonly RequestView[], RequestView[]>();
    const sort = (queue: readonly RequestView[]): RequestView[] => {
      let out = sorted.get(queue);
      if (!out) sorted.set(queue, out = [...queue].sort(byPriority));
      return out;
    };
    return { order: (view) => ({ running: sort(view.running), waiting: sort(view.waiting) }) };
  },
});
