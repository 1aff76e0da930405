import assert from "node:assert/strict";
import { ttl } from "../../../policies/continuum/mod.ts";
import type { KvCachePolicy, PluginContext } from "../../../core/slots.ts";
import type { RequestView, TurnInfo } from "../../../core/types.ts";
import { parseOptions } from "../../../plugins/options.ts";

// The policy alone, driven through its hooks as the engine drives it: a finished turn's
// blocks are freed (tail first) and onFinish follows at once.

const BLOCKS = 32;

function policy(
  options: Record<string, unknown> = {},
  extra: Partial<PluginContext> = {},
): KvCachePolicy {
  const ctx = {
    kv: { numBlocks: BLOCKS, blockSize: 16 },
    limits: { maxBatchTokens: 2048, maxBatchSeqs: 256, maxModelLen: 4096 },
    seed: 0,
    log: () => {},
    ...extra,
  } as unknown as PluginContext;
  const opts = parseOptions(ttl, { mode: "fixed", fixedTtl: 2, ...options }) as Parameters<
    typeof ttl.create
  >[0];
  return ttl.create(opts, ctx) as KvCachePolicy;
}

let serial = 0;
function turn(
  programId: string | undefined,
  arrivalTime: number,
  info?: TurnInfo,
  numTokens = 100,
): RequestView {
  return {
    id: `r${serial++}`,
    programId,
    turn: info,
    arrivalTime,
    numTokens,
    firstScheduledTime: arrivalTime,
  } as unknown as RequestView;
}

/** The engine's end of a request: its blocks freed tail first, then onFinish. */
function finish(p: KvCachePolicy, req: RequestView, blocks: number[], now: number, ok = true) {
  for (let i = blocks.length - 1; i >= 0; i--) p.onCachedFree(blocks[i], now, req);
  p.onFinish?.(req, ok ? "stop" : "abort", now);
}

function drain(p: KvCachePolicy, now: number): number[] {
  const out: number[] = [];
  for (let b = p.evict(now); b >= 0; b = p.evict(now)) out.push(b);
  return out;
}

Deno.test("ttl: a finished turn with a follow-up coming is pinned; unpinned blocks go first", () => {
  const p = policy();
  const a = turn("a", 0, { tool: "bash" });
  p.onArrival?.(a, 0);
  finish(p, a, [0, 1, 2], 1);
  const other = turn(undefined, 0.5);
  finish(p, other, [10, 11], 1.1); // freed later: an LRU queue would keep these longer
  assert.equal(p.size, 5, "pinned blocks still count as free (pins are soft)");
  assert.equal(p.pinned?.("a"), true);
  assert.deepEqual(drain(p, 1.2), [11, 10, 2, 1, 0], "the context's end is evicted first");
  assert.equal(p.pinned?.("a"), false, "breaking a pin for memory ends it");
});

Deno.test("ttl: pins expire after their time; expired blocks queue as if freed then", () => {
  const p = policy({ fixedTtl: 2 });
  const a = turn("a", 0, { tool: "ls" });
  p.onArrival?.(a, 0);
  finish(p, a, [0, 1], 1);
  const other = turn(undefined, 0);
  finish(p, other, [5], 2);
  assert.equal(p.pinned?.("a"), true);
  assert.equal(p.evict(2.5), 5, "before expiry, the unpinned block goes first");
  const late = turn(undefined, 0);
  finish(p, late, [6], 2.9);
  // At 3.5 the pin (until 3.0) has expired: its blocks follow the block freed at 2.9.
  assert.deepEqual(drain(p, 3.5), [6, 1, 0]);
  assert.equal(p.pinned?.("a"), false);
});

Deno.test("ttl: an arrived follow-up keeps the pin past its time and its prefix hit spends it", () => {
  const p = policy({ fixedTtl: 1 });
  const t0 = turn("a", 0, { tool: "pytest" });
  p.onArrival?.(t0, 0);
  finish(p, t0, [0, 1, 2], 1);
  const t1 = turn("a", 1.5, { last: true });
  p.onArrival?.(t1, 1.5);
  assert.equal(p.pinned?.("a"), true);
  const other = turn(undefined, 0);
  finish(p, other, [7], 1.6);
  assert.equal(p.evict(5), 7, "the claimed pin outlives its time");
  assert.equal(p.pinned?.("a"), true);
  p.onReuse(0); // the follow-up's prefix hit takes its first block
  assert.equal(p.pinned?.("a"), false, "the hit spends the pin");
  p.onReuse(1);
  p.onReuse(2);
  assert.equal(p.size, 0);
  assert.equal(p.evict(5), -1);
});

Deno.test("ttl: last turns, failed turns, preemptions and requests without a program are not pinned", () => {
  const p = policy();
  const last = turn("a", 0, { last: true });
  p.onArrival?.(last, 0);
  finish(p, last, [0], 1);
  const failed = turn("b", 0, { tool: "ls" });
  p.onArrival?.(failed, 0);
  finish(p, failed, [1], 1, false);
  const anonymous = turn(undefined, 0);
  finish(p, anonymous, [2], 1);
  const preempted = turn("c", 0, { tool: "ls" });
  p.onArrival?.(preempted, 0);
  p.onCachedFree(3, 1, preempted); // released without finishing: preemption
  for (const pid of ["a", "b", "c"]) assert.equal(p.pinned?.(pid), false, pid);
  assert.deepEqual(drain(p, 1), [0, 1, 2, 3], "plain least-recently-freed order");
});

Deno.test("ttl: memory pressure breaks the pin of the program that arrived last first", () => {
  const p = policy();
  const old = turn("old", 0, { tool: "ls" });
  const young = turn("young", 5, { tool: "ls" });
  p.onArrival?.(old, 0);
  p.onArrival?.(young, 5);
  finish(p, young, [8, 9], 6);
  finish(p, old, [3, 4], 6.5);
  assert.deepEqual(drain(p, 7), [9, 8, 4, 3]);
});

Deno.test("ttl: the last turn's end drops its program's pin, and tool pauses are learnt", () => {
  const p = policy({ mode: "fixed", fixedTtl: 3, fixedMaxPause: 1 });
  // Tool "slow" is seen to pause 5 s: fixed mode stops pinning after it.
  const t0 = turn("a", 0, { tool: "slow" });
  p.onArrival?.(t0, 0);
  finish(p, t0, [0], 1);
  assert.equal(p.pinned?.("a"), true, "unknown tools are pinned");
  const t1 = turn("a", 6, { tool: "slow" });
  p.onArrival?.(t1, 6);
  p.onReuse(0);
  finish(p, t1, [0, 1], 7);
  assert.equal(p.pinned?.("a"), false, "a tool whose mean pause exceeds the limit is not");
  const t2 = turn("a", 8, { last: true });
  p.onArrival?.(t2, 8);
  p.onReuse(0);
  p.onReuse(1);
  finish(p, t2, [0, 1, 2], 9);
  assert.equal(p.size, 3);
});

Deno.test("ttl: cost-benefit pins only turns whose recompute costs more than the pause (cold start)", () => {
  // Cold start: pauses assumed exponential with mean 1 s; tau = ln(prefill seconds) when > 1.
  const p = policy({ mode: "cost-benefit", coldMean: 1, prefillTokensPerSecond: 1000 });
  const cheap = turn("cheap", 0, { tool: "ls" }, 500); // 0.5 s to recompute: not worth a pin
  const dear = turn("dear", 0, { tool: "ls" }, 5000); // 5 s: pin for ln 5 = 1.61 s
  p.onArrival?.(cheap, 0);
  p.onArrival?.(dear, 0);
  finish(p, cheap, [0], 1);
  finish(p, dear, [1], 1);
  assert.equal(p.pinned?.("cheap"), false);
  assert.equal(p.pinned?.("dear"), true);
  const other = turn(undefined, 0);
  finish(p, other, [2], 2.5);
  assert.equal(p.evict(2.55), 0);
  assert.equal(p.evict(2.55), 2, "still pinned at 2.55 s");
  assert.equal(p.pinned?.("dear"), true);
  assert.equal(p.evict(2.62), 1, "expired at 1 + ln 5 = 2.61 s");
});

Deno.test("ttl: with a host tier, a miss costs the cheaper of a re-prefill and a copy back", () => {
  // Prefill: 1 ms a token (5 s for 5,000); copy back: 0.1 ms a token (0.5 s).
  const costModel = {
    stepTime: (shape: { prefillTokens: number }) => shape.prefillTokens / 1000,
    swapTime: (tokens: number) => tokens / 10_000,
  };
  const pinnedAfter = (hostCacheBlocks: number) => {
    const p = policy({ mode: "cost-benefit", coldMean: 1 }, { costModel, hostCacheBlocks });
    const t = turn("a", 0, { tool: "ls" }, 5000);
    p.onArrival?.(t, 0);
    finish(p, t, [0], 1);
    return p.pinned?.("a");
  };
  assert.equal(pinnedAfter(0), true, "5 s of recompute is worth a pin of ln 5 s");
  assert.equal(pinnedAfter(64), false, "0.5 s of copying back is not worth a 1 s pause");
});
