/**
 * `ttl` kvcache plugin (Continuum, spec section 3): when a turn of a multi-turn agent
 * program ends and another turn will follow (a tool call is running), its KV blocks are
 * pinned for a time-to-live instead of joining the least-recently-freed queue, so that the
 * next turn finds its context cached. Requests carry `programId`; `turn.last` marks a
 * program's last turn and `turn.tool` the tool a turn calls.
 *
 * Pins are soft, so they can never deadlock the pool: pinned blocks still count as free,
 * and eviction takes every unpinned cached block first, then breaks pins, the program that
 * arrived last first (the paper's admission-failure unpin loop). A pin ends when its time
 * runs out (unless the follow-up has arrived, which then reuses it), when the follow-up's
 * prefix hit takes it, or when the program's last turn ends.
 *
 * The time-to-live comes from {@link TtlEstimator}: the paper's cost-benefit rule, or a
 * fixed pin after fast tools (the authors' preview code: 2 s when the tool's mean pause is
 * at most 2 s). Pair it with the `program-fcfs` scheduler.
 *
 * @module
 */

import { z } from "zod";
import { definePlugin, type Plugin } from "../../plugins/define.ts";
import type { KvCachePolicy, PluginContext } from "../../core/slots.ts";
import type { FinishReason, RequestView } from "../../core/types.ts";
import { LruBlockQueue } from "../../core/lru_queue.ts";
import { TtlEstimator } from "./ttl_estimator.ts";

const options = z.object({
  mode: z.enum(["cost-benefit", "fixed"]).default("cost-benefit").describe(
    "time-to-live rule: the paper's cost-benefit estimate, or a fixed pin after fast tools",
  ),
  fixedTtl: z.number().min(0).default(2).describe("fixed mode: seconds to pin"),
  fixedMaxPause: z.number().min(0).default(2).describe(
    "fixed mode: pin only after tools whose mean pause is at most this many seconds",
  ),
  coldStart: z.number().int().min(0).default(100).describe(
    "pauses seen before their empirical distribution is trusted",
  ),
  coldMean: z.number().positive().default(1).describe(
    "cold start: assumed mean tool pause, seconds",
  ),
  etaWarmup: z.number().int().min(0).default(20).describe(
    "finished programs before the turn-length correlation is measured",
  ),
  historyLimit: z.number().int().min(1).default(1000).describe("pauses kept per tool"),
  queueWindow: z.number().int().min(1).default(100).describe(
    "returning turns whose queueing delay is averaged",
  ),
  maxTtl: z.number().min(0).default(30).describe("longest pin, seconds"),
  prefillTokensPerSecond: z.number().positive().default(5000).describe(
    "re-prefill speed assumed when the executor offers no cost model",
  ),
});

/** One program's pinned blocks. */
interface Pin {
  readonly programId: string;
  readonly blocks: number[];
  expiry: number;
  /** Its follow-up has arrived: keep it until that turn's prefix hit takes it. */
  claimed: boolean;
}

/** What the plugin remembers of a program. */
interface ProgramState {
  /** Arrival of its first turn. */
  arrival: number;
  /** End of its latest turn, or -1. */
  finishedAt: number;
  /** Tool its latest turn called. */
  tool: string | undefined;
  /** Turns completed. */
  turns: number;
}

/** Programs remembered at most (the oldest are forgotten beyond it). */
const MAX_PROGRAMS = 100_000;

/** The `ttl` plugin. */
export const ttl: Plugin<"kvcache", typeof options> = definePlugin({
  name: "ttl",
  slot: "kvcache",
  description: "pins a finished agent turn's KV for its next turn, for a learnt time (Continuum)",
  options,
  create(opts, ctx): KvCachePolicy {
    const estimator = new TtlEstimator(opts);
    const lru = new LruBlockQueue(ctx.kv.numBlocks);
    const pinOf: (Pin | undefined)[] = new Array(ctx.kv.numBlocks);
    const pins = new Map<string, Pin>();
    const programs = new Map<string, ProgramState>();
    const missed = new Set<string>(); // returning turns that found no pin
    const prefillSeconds = prefillTime(ctx, opts.prefillTokensPerSecond);
    let pinned = 0;
    let nextExpiry = Infinity;
    let clock = 0; // the latest time a hook was given
    // Blocks the engine just freed for one request; onFinish follows at once when it ended.
    let lastOwner: RequestView | undefined;
    let lastBlocks: number[] = [];

    /**
     * End a pin: its blocks join the least-recently-freed queue as if freed now, the
     * context's end first (the order the engine freed them in), as vLLM frees a request.
     */
    const unpin = (pin: Pin) => {
      pins.delete(pin.programId);
      for (const b of pin.blocks) {
        if (pinOf[b] !== pin) continue;
        pinOf[b] = undefined;
        pinned--;
        lru.push(b);
      }
    };
    const expire = (now: number) => {
      if (now < nextExpiry) return;
      nextExpiry = Infinity;
      for (const pin of [...pins.values()]) {
        if (pin.claimed) continue;
        if (pin.expiry <= now) unpin(pin);
        else nextExpiry = Math.min(nextExpiry, pin.expiry);
      }
    };
    /** The pin of the program that arrived last. */
    const newestPin = (): Pin | undefined => {
      let best: Pin | undefined, bestArrival = -Infinity;
      for (const pin of pins.values()) {
        const a = programs.get(pin.programId)?.arrival ?? Infinity;
        if (a >= bestArrival) [best, bestArrival] = [pin, a];
      }
      return best;
    };
    const program = (req: RequestView): ProgramState | undefined => {
      const pid = req.programId;
      if (pid === undefined) return undefined;
      let st = programs.get(pid);
      if (!st) {
        if (programs.size >= MAX_PROGRAMS) programs.delete(programs.keys().next().value!);
        st = { arrival: req.arrivalTime, finishedAt: -1, tool: undefined, turns: 0 };
        programs.set(pid, st);
      }
      return st;
    };
    /** Pin the blocks the engine just freed for `req`, if the estimate says so. */
    const pinFinished = (req: RequestView, now: number) => {
      const pid = req.programId!;
      if (lastOwner !== req) return;
      const tau = estimator.ttl({
        tool: req.turn?.tool,
        prefillSeconds: prefillSeconds(req.numTokens),
      });
      if (!(tau > 0)) return;
      const pin: Pin = { programId: pid, blocks: [], expiry: now + tau, claimed: false };
      for (const b of lastBlocks) {
        if (!lru.has(b)) continue;
        lru.remove(b);
        pinOf[b] = pin;
        pin.blocks.push(b);
        pinned++;
      }
      if (pin.blocks.length === 0) return;
      pins.set(pid, pin);
      nextExpiry = Math.min(nextExpiry, pin.expiry);
    };

    return {
      prefixCaching: true,
      get size() {
        return lru.size + pinned;
      },
      pinned(programId) {
        const pin = pins.get(programId);
        return pin !== undefined && (pin.claimed || pin.expiry > clock);
      },
      onCachedFree(block, now, owner) {
        clock = Math.max(clock, now);
        expire(now); // expired blocks queue ahead of the ones freed from now on
        if (owner !== lastOwner) {
          lastOwner = owner;
          lastBlocks = [];
        }
        lastBlocks.push(block);
        lru.push(block);
      },
      onReuse(block) {
        const pin = pinOf[block];
        if (!pin) {
          lru.remove(block);
          return;
        }
        // The follow-up's prefix hit: it holds the blocks from now on; the pin is spent.
        pinOf[block] = undefined;
        pinned--;
        unpin(pin);
      },
      evict(now) {
        clock = Math.max(clock, now);
        expire(now);
        let b = lru.shift();
        if (b < 0) {
          const pin = newestPin();
          if (pin) {
            unpin(pin);
            b = lru.shift();
          }
        }
        return b;
      },
      onArrival(req: RequestView, now: number) {
        clock = Math.max(clock, now);
        const st = program(req);
        if (!st) return;
        if (st.finishedAt >= 0) {
          estimator.recordPause(st.tool, Math.max(0, req.arrivalTime - st.finishedAt));
          const pin = pins.get(req.programId!);
          if (pin) pin.claimed = true;
          else missed.add(req.id);
        }
      },
      onFinish(req: RequestView, reason: FinishReason, now: number) {
        clock = Math.max(clock, now);
        if (missed.delete(req.id) && req.firstScheduledTime >= 0) {
          estimator.recordQueueing(req.firstScheduledTime - req.arrivalTime);
        }
        const st = program(req);
        if (st) {
          // A pin this turn did not take (its prompt did not extend the last) is stale.
          const stale = pins.get(req.programId!);
          if (stale) unpin(stale);
          const ok = reason === "stop" || reason === "length";
          if (ok) st.turns++;
          st.finishedAt = now;
          st.tool = req.turn?.tool;
          if (req.turn?.last) {
            if (ok) estimator.recordProgram(st.turns);
            programs.delete(req.programId!);
          } else if (ok) pinFinished(req, now);
        }
        lastOwner = undefined;
        lastBlocks = [];
      },
      exportState: () => estimator.exportState(),
      importState: (state) => estimator.importState(state),
    };
  },
});

/**
 * Seconds to have a context of `n` tokens back if it is not kept (the paper's
 * PrefillOrReload): a prefill by the executor's cost model in chunks of the step budget (or
 * `n / tokensPerSecond` without one), or, with a host tier of the prefix cache, a copy
 * back from host memory when that is cheaper.
 */
function prefillTime(ctx: PluginContext, tokensPerSecond: number): (n: number) => number {
  const model = ctx.costModel;
  if (!model) return (n) => n / tokensPerSecond;
  const chunk = Math.max(1, ctx.limits.maxBatchTokens);
  const reload = (ctx.hostCacheBlocks ?? 0) > 0 ? model.swapTime?.bind(model) : undefined;
  return (n) => {
    let t = 0;
    for (let start = 0; start < n; start += chunk) {
      const c = Math.min(chunk, n - start);
      t += model.stepTime({
        prefillTokens: c,
        prefillContext: start,
        decodes: 0,
        decodeContext: 0,
      });
    }
    return reload ? Math.min(t, reload(n)) : t;
  };
}
