/**
 * `ltr` scheduler (Learning to Rank, NeurIPS'24): each request is scored once on arrival
 * by a ranking predictor (higher: shorter expected output); every step all requests are
 * ordered by score, the batch is the greedy prefix of that order and lower-ranked running
 * requests are preempted when the prefix does not fit. A starvation guard promotes a
 * request that has not run for `starveLimit` iterations for `quantum` iterations
 * (Learning-to-Rank spec, section 3.2). Victims are recomputed later: this engine has
 * no swap space, so under overload the guard's promotions cost more than in the paper.
 *
 * The predictor is a linear ranker over hashed n-grams of the prompt tokens, trained with
 * ListMLE by `main.ts train-ranker` and loaded with `ranker: FILE`; with `online` it also
 * learns from finished requests (and starts untrained without a file). `noisy-oracle`
 * replaces it by the true length blurred to a target Kendall tau (simulator only), to
 * sweep predictor quality.
 *
 * @module
 */

import { z } from "zod";
import { definePlugin, type Plugin } from "../../plugins/define.ts";
import type { Oracle, PluginContext, Scheduler } from "../../core/slots.ts";
import type { FinishReason, RequestView } from "../../core/types.ts";
import { UsageError } from "../../core/errors.ts";
import { DEFAULT_FEATURES, type SparseVector } from "./features.ts";
import { type Example, ListMleTrainer } from "./listmle.ts";
import { LinearRanker, loadRanker } from "./ranker.ts";
import { type KeyFiller, PreemptiveOrder } from "./preemptive_order.ts";
import { QueueStates } from "./queue_states.ts";

const options = z.object({
  ranker: z.string().default("").describe("ranker file written by train-ranker (empty: none)"),
  online: z.boolean().optional().describe(
    "learn from finished requests (default: on when no ranker file is given)",
  ),
  predictor: z.enum(["model", "noisy-oracle"]).default("model").describe(
    "model: the ranker; noisy-oracle: true lengths blurred to Kendall tau `tau` (simulator only)",
  ),
  tau: z.number().min(0).max(1).default(0.6).describe("target Kendall tau of noisy-oracle"),
  starveLimit: z.number().int().min(0).default(200).describe(
    "promote a request idle for this many iterations (0: no starvation guard)",
  ),
  quantum: z.number().int().min(1).default(10).describe(
    "iterations a promoted request keeps priority",
  ),
  tokenBudget: z.number().int().min(1).default(768).describe(
    "tokens per step the batch prefix is built under (match the batcher's budget)",
  ),
  maxNumSeqs: z.number().int().min(1).default(256).describe("most running requests"),
  watermark: z.number().min(0).max(0.5).default(0.01).describe("fraction of KV blocks kept free"),
  listSize: z.number().int().min(2).max(1024).default(32).describe(
    "online mode: requests per ListMLE list",
  ),
  lr: z.number().positive().max(1).default(0.005).describe("online mode: Adam step size"),
});

/** Options of the `ltr` scheduler, defaults filled in. */
export type LtrOptions = z.output<typeof options>;

interface State {
  score: number;
  promoted: boolean;
  runs: number;
  lastCounted: number;
  seenStep: number;
  /** Sitting in the waiting queue since its last full guard check (see the key filler). */
  skipped: boolean;
  x?: SparseVector;
}

/** The `ltr` scheduler's implementation, with its predictor exposed for tests and reports. */
export interface LtrScheduler extends Scheduler {
  /** The score given to a request (higher: expected shorter), if it has one. */
  scoreOf(id: string): number | undefined;
  /** The ranker in use (undefined with noisy-oracle). */
  readonly ranker: LinearRanker | undefined;
}

/**
 * The noisy-oracle score of a request whose true output length is `length`: for a
 * bivariate normal, Kendall tau = (2 / pi) asin(rho), so the log length (taken to spread
 * with a standard deviation of about 1.2, as chat outputs do) is mixed with seeded
 * Gaussian noise at correlation rho = sin(pi tau / 2). The tau actually reached depends
 * on the workload; experiments measure it with this same function.
 */
export function noisyOracleScore(length: number, id: string, tau: number, seed: number): number {
  const rho = Math.sin((Math.PI * tau) / 2);
  const spread = Math.sqrt(Math.max(0, 1 - rho * rho));
  return -(rho * Math.log(Math.max(1, length)) / 1.2 + spread * gaussian(id, seed));
}

function noisyOracle(oracle: Oracle, tau: number, seed: number): (r: RequestView) => number {
  return (r) =>
    noisyOracleScore(
      Math.min(oracle.outputLength(r.id) ?? r.maxTokens, r.maxTokens),
      r.id,
      tau,
      seed,
    );
}

function gaussian(id: string, seed: number): number {
  let h = (seed ^ 0x2545f491) >>> 0;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193) >>> 0;
  const next = (): number => {
    h = (h + 0x6d2b79f5) | 0;
    let t = Math.imul(h ^ (h >>> 15), h | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  return Math.sqrt(-2 * Math.log(next())) * Math.cos(2 * Math.PI * next());
}

async function create(opts: LtrOptions, ctx: PluginContext): Promise<LtrScheduler> {
  let ranker: LinearRanker | undefined;
  let scoreFn: (r: RequestView) => number;
  let trainer: ListMleTrainer | undefined;
  if (opts.predictor === "noisy-oracle") {
    if (!ctx.oracle) {
      throw new UsageError(
        "scheduler ltr with predictor noisy-oracle reads true lengths, which exist only in simulation (simulator only): use --executor sim or predictor model",
        "predictor",
      );
    }
    scoreFn = noisyOracle(ctx.oracle, opts.tau, ctx.seed);
  } else {
    ranker = opts.ranker ? await loadRanker(opts.ranker) : new LinearRanker(DEFAULT_FEATURES);
    const online = opts.online ?? !opts.ranker;
    if (online) {
      trainer = new ListMleTrainer(ranker, {
        lr: opts.lr,
        listSize: opts.listSize,
        seed: ctx.seed,
      });
    }
    if (!opts.ranker) {
      ctx.log(`no ranker file: starting untrained${online ? ", learning online" : ""}`);
    }
    const rk = ranker;
    scoreFn = (r) => rk.score(r.promptTokens);
  }
  const order = new PreemptiveOrder(opts);
  const pending: Example[] = [];
  const replay: Example[] = [];
  let finished = 0, replaySeed = ctx.seed >>> 0;
  let step = 0;

  const states = new QueueStates<State>((r) => ({
    score: scoreFn(r),
    promoted: false,
    runs: 0,
    lastCounted: -1,
    seenStep: step,
    skipped: false,
    x: trainer ? ranker!.featurizer.vector(r.promptTokens) : undefined,
  }));

  // The starvation guard, per request and step: a request idle for `starveLimit`
  // iterations is promoted for `quantum` iterations it runs (spec, section 3.2).
  const guard = opts.starveLimit > 0;
  let prevDone = -1; // `done` of the previous order() call
  const check = (st: State, ran: number, done: number): void => {
    if (st.skipped) {
      // It sat in the waiting queue, where each call would only have set lastCounted.
      st.skipped = false;
      if (st.promoted) st.lastCounted = prevDone;
    }
    if (st.promoted) {
      if (ran > st.lastCounted) st.runs -= ran - st.lastCounted;
      st.lastCounted = done;
      if (st.runs <= 0) {
        st.promoted = false;
        st.seenStep = done;
      }
    } else if (done - Math.max(ran, st.seenStep) >= opts.starveLimit) {
      st.promoted = true;
      st.runs = opts.quantum;
      st.lastCounted = done;
    }
  };
  const keyOf = (st: State): number => st.promoted ? -1e30 - st.score : -st.score;

  // A waiting request is never scheduled while it stays waiting, so its guard state only
  // changes when it starves: its key and that step are kept parallel to the waiting queue
  // (this call's and the previous call's), and a request that stayed costs two array reads.
  let wKey = new Float64Array(256), wStarve = new Float64Array(256);
  let nextKey = new Float64Array(256), nextStarve = new Float64Array(256);

  // Keys of a queue this step (lower first); also runs the starvation guard.
  const fill: KeyFiller = (list, q, out, prev) => {
    const sts = states.of(list, q, prev);
    const done = step - 1; // the last iteration that has run
    const n = sts.length;
    if (q === 0) {
      for (let i = 0; i < n; i++) {
        const st = sts[i];
        if (guard) check(st, list[i].lastScheduledStep, done);
        out[i] = keyOf(st);
      }
      return true;
    }
    if (nextKey.length < n) {
      const size = Math.max(n, nextKey.length * 2);
      nextKey = new Float64Array(size);
      nextStarve = new Float64Array(size);
    }
    for (let i = 0; i < n; i++) {
      const p = prev[i];
      let key: number, starve: number;
      if (p >= 0) {
        key = wKey[p];
        starve = wStarve[p];
        if (done >= starve) {
          const st = sts[i];
          st.promoted = true;
          st.runs = opts.quantum;
          st.lastCounted = done;
          key = keyOf(st);
          starve = Infinity;
        }
      } else {
        const st = sts[i];
        const ran = list[i].lastScheduledStep;
        if (guard) {
          check(st, ran, done);
          st.skipped = true;
        }
        key = keyOf(st);
        starve = guard && !st.promoted ? Math.max(ran, st.seenStep) + opts.starveLimit : Infinity;
      }
      nextKey[i] = key;
      nextStarve[i] = starve;
      out[i] = key;
    }
    [wKey, nextKey] = [nextKey, wKey];
    [wStarve, nextStarve] = [nextStarve, wStarve];
    return true;
  };

  const learn = (x: SparseVector, length: number): void => {
    if (!trainer) return;
    const ex = { x, length };
    pending.push(ex);
    finished++;
    // Reservoir of past examples, replayed beside each fresh list.
    if (replay.length < 1024) replay.push(ex);
    else {
      replaySeed = (Math.imul(replaySeed, 1664525) + 1013904223) >>> 0;
      const j = replaySeed % finished;
      if (j < replay.length) replay[j] = ex;
    }
    if (pending.length >= opts.listSize) {
      trainer.step(pending);
      pending.length = 0;
      if (replay.length >= opts.listSize * 2) {
        const list: Example[] = [];
        for (let k = 0; k < opts.listSize; k++) {
          replaySeed = (Math.imul(replaySeed, 1664525) + 1013904223) >>> 0;
          list.push(replay[replaySeed % replay.length]);
        }
        trainer.step(list);
      }
    }
  };

  return {
    ranker,
    scoreOf: (id) => states.peek(id)?.score,
    order(view) {
      step = view.step;
      const result = order.orderBy(view, fill);
      prevDone = step - 1;
      return result;
    },
    onArrival(req) {
      states.get(req);
    },
    onFinish(req: RequestView, reason: FinishReason): void {
      const st = states.peek(req.id);
      states.delete(req.id);
      if (st?.x && (reason === "stop" || reason === "length")) learn(st.x, req.outputTokens.length);
    },
  };
}

/** The `ltr` plugin. */
export const ltr: Plugin<"scheduler", typeof options> = definePlugin({
  name: "ltr",
  slot: "scheduler",
  description:
    "learning to rank: shortest predicted output first, preemptive, with a starvation guard",
  options,
  create,
});
