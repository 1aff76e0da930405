/**
 * `program-fcfs` scheduler (Continuum, spec section 3(a), "Priority key"): serves whole
 * agent programs first come, first served. Waiting requests go in this order: preempted
 * ones first, then those whose program holds a pinned KV (see the `ttl` kvcache plugin),
 * then by the arrival of their program's first turn, so a returning turn of an old program
 * overtakes newer programs instead of queueing behind them. Running requests are ordered
 * the same way, so the newest program is the first preemption victim. Requests without a
 * `programId` are programs of one turn.
 *
 * @module
 */

import { definePlugin, type Plugin } from "../../plugins/define.ts";
import type { Scheduler } from "../../core/slots.ts";
import type { EngineView, RequestView } from "../../core/types.ts";

/** Programs remembered at most (the oldest are forgotten beyond it). */
const MAX_PROGRAMS = 100_000;

/** The `program-fcfs` plugin. */
export const programFcfs: Plugin<"scheduler"> = definePlugin({
  name: "program-fcfs",
  slot: "scheduler",
  description: "first come, first served by program: returning agent turns go first (Continuum)",
  create(): Scheduler {
    const firstArrival = new Map<string, number>();
    const programArrival = (r: RequestView): number => {
      const pid = r.programId;
      if (pid === undefined) return r.arrivalTime;
      let t = firstArrival.get(pid);
      if (t === undefined) {
        if (firstArrival.size >= MAX_PROGRAMS) {
          firstArrival.delete(firstArrival.keys().next().value!);
        }
        firstArrival.set(pid, t = r.arrivalTime);
      }
      return t;
    };

    // Sort only when a queue or a pin changes: the engine hands out the same arrays until then.
    let lastWaiting: readonly RequestView[] | undefined, lastPins = "";
    let waitingOrder: RequestView[] = [];
    let lastRunning: readonly RequestView[] | undefined;
    let runningOrder: RequestView[] = [];
    const byProgram = (a: RequestView, b: RequestView) =>
      programArrival(a) - programArrival(b) || a.arrivalTime - b.arrivalTime;

    const orderWaiting = (view: EngineView): RequestView[] => {
      const w = view.waiting;
      let pins = "";
      const pinned = new Set<RequestView>();
      for (const r of w) {
        if (r.programId !== undefined && view.kv.pinned(r.programId)) {
          pinned.add(r);
          pins += r.id + "\n";
        }
      }
      if (w === lastWaiting && pins === lastPins) return waitingOrder;
      const rank = (r: RequestView) => r.numPreemptions > 0 ? 0 : pinned.has(r) ? 1 : 2;
      waitingOrder = [...w].sort((a, b) => rank(a) - rank(b) || byProgram(a, b));
      lastWaiting = w;
      lastPins = pins;
      return waitingOrder;
    };

    return {
      order(view) {
        if (view.running !== lastRunning) {
          runningOrder = [...view.running].sort(byProgram);
          lastRunning = view.running;
        }
        return { running: runningOrder, waiting: orderWaiting(view) };
      },
      onArrival(req) {
        programArrival(req);
      },
      onFinish(req) {
        if (req.turn?.last && req.programId !== undefined) firstArrival.delete(req.programId);
      },
      exportState: () => [...firstArrival],
      importState(state) {
        if (!Array.isArray(state)) return;
        for (const [pid, t] of state as [string, number][]) {
          if (typeof pid === "string" && typeof t === "number") firstArrival.set(pid, t);
        }
      },
    };
  },
});
