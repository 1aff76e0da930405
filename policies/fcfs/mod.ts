/**
 * `fcfs` scheduler: first come, first served. Running requests keep the order they
 * started in (the newest is the first preemption victim); waiting requests are served in
 * arrival order, preempted ones first.
 *
 * @module
 */

import { definePlugin, type Plugin } from "../../plugins/define.ts";
import type { Scheduler } from "../../core/slots.ts";

/** The `fcfs` plugin. */
export const fcfs: Plugin<"scheduler"> = definePlugin({
  name: "fcfs",
  slot: "scheduler",
  description: "first come, first served (vLLM's default)",
  create(): Scheduler {
    // The engine already keeps both queues in FCFS order: no sorting, no allocation.
    return { order: (view) => ({ running: view.running, waiting: view.waiting }) };
  },
});
