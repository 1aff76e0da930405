/**
 * `mlfq` scheduler, the FastServe-style multi-level feedback queue used as a baseline by
 * Learning to Rank: new requests enter level 0; a request's service time accumulates
 * while it is scheduled, and past `baseQuantum * threshold^level` seconds it drops one
 * level. Batches fill from the highest level down (arrival order within a level), and
 * lower-level running requests are preempted when the batch does not fit. An optional
 * guard sends a request idle for `starveSeconds` back to level 0 (Learning-to-Rank spec,
 * section 3.4).
 *
 * @module
 */

import { z } from "zod";
import { definePlugin, type Plugin } from "../../plugins/define.ts";
import type { Scheduler } from "../../core/slots.ts";
import { type KeyFiller, PreemptiveOrder } from "../ltr/preemptive_order.ts";
import { QueueStates } from "../ltr/queue_states.ts";

const options = z.object({
  baseQuantum: z.number().positive().max(1000).default(0.01).describe(
    "seconds of service at level 0 (the paper's serving runs: 0.01; burst runs: 0.03)",
  ),
  threshold: z.number().min(1).max(1000).default(10).describe("quantum growth per level"),
  levels: z.number().int().min(1).max(64).default(5).describe("number of levels"),
  starveSeconds: z.number().min(0).default(0).describe(
    "return a request idle this long to level 0 (0: never)",
  ),
  tokenBudget: z.number().int().min(1).default(768).describe("tokens per step (match the batcher)"),
  maxNumSeqs: z.number().int().min(1).default(256).describe("most running requests"),
  watermark: z.number().min(0).max(0.5).default(0.01).describe("fraction of KV blocks kept free"),
});

interface State {
  level: number;
  service: number;
  idleSince: number;
}

/** The `mlfq` plugin. */
export const mlfq: Plugin<"scheduler", typeof options> = definePlugin({
  name: "mlfq",
  slot: "scheduler",
  description: "multi-level feedback queue on service time, preemptive (FastServe-style)",
  options,
  create(opts): Scheduler {
    const order = new PreemptiveOrder(opts);
    let prevStep = -1, prevNow = 0, now = 0, dt = 0;
    const states = new QueueStates<State>(() => ({ level: 0, service: 0, idleSince: now }));
    const fill: KeyFiller = (list, q, out, prev) => {
      const sts = states.of(list, q, prev);
      for (let i = 0; i < sts.length; i++) {
        const st = sts[i];
        if (list[i].lastScheduledStep >= prevStep && prevStep >= 0) {
          // It ran in every step since the last decision (the steps in between repeat it).
          st.service += dt;
          st.idleSince = now;
          while (
            st.level < opts.levels - 1 &&
            st.service > opts.baseQuantum * opts.threshold ** st.level
          ) {
            st.level++;
          }
        } else if (opts.starveSeconds > 0 && now - st.idleSince >= opts.starveSeconds) {
          st.level = 0;
          st.service = 0;
          st.idleSince = now;
        }
        out[i] = st.level;
      }
      return true;
    };
    return {
      order(view) {
        now = view.now;
        dt = prevStep >= 0 ? now - prevNow : 0;
        const result = order.orderBy(view, fill);
        prevStep = view.step;
        prevNow = now;
        return result;
      },
      onFinish(req) {
        states.delete(req.id);
      },
    };
  },
});
