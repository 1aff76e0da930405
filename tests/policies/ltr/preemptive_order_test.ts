import assert from "node:assert/strict";
import fc from "fast-check";
import { orderBits, PreemptiveOrder } from "../../../policies/ltr/preemptive_order.ts";
import type { EngineView, RequestView } from "../../../core/types.ts";

type Fake = RequestView & { key: number };

function fakeView(
  running: Fake[],
  waiting: Fake[],
  freeBlocks: number,
  totalBlocks = 1000,
): EngineView {
  return {
    running,
    waiting,
    kv: { blockSize: 16, totalBlocks, freeBlocks, usage: 0 },
    cachedPrefixTokens: () => 0,
    blocksNeeded: (r: RequestView, n: number) =>
      Math.ceil(n / 16) + (r.status === "running" ? 0 : 0),
    blocksFreedBy: (r: RequestView) => r.numBlocks,
  } as unknown as EngineView;
}

const req = (
  id: string,
  key: number,
  status: "running" | "waiting",
  numTokens = 33,
  numComputed = 32,
): Fake =>
  ({
    id,
    key,
    status,
    numTokens,
    numComputedTokens: status === "running" ? numComputed : 0,
    numBlocks: 3,
  }) as unknown as Fake;

Deno.test("orderBits orders like the float32 value", () => {
  fc.assert(
    fc.property(fc.float({ noNaN: true }), fc.float({ noNaN: true }), (a, b) => {
      const fa = Math.fround(a), fb = Math.fround(b);
      if (fa < fb) assert.ok(orderBits(fa) < orderBits(fb));
      if (fa === fb && !Object.is(fa, -0) && !Object.is(fb, -0)) {
        assert.equal(orderBits(fa), orderBits(fb));
      }
    }),
    { numRuns: 2000 },
  );
});

Deno.test("PreemptiveOrder sorts both queues by key, stable for equal keys", () => {
  const order = new PreemptiveOrder({ tokenBudget: 1 << 20, maxNumSeqs: 1 << 20, watermark: 0 });
  fc.assert(
    fc.property(
      fc.array(
        fc.oneof(
          fc.double({ min: -1e6, max: 1e6, noNaN: true }),
          fc.integer({ min: -3, max: 3 }),
          fc.constant(-1e30),
        ),
        {
          maxLength: 300,
        },
      ),
      (keys) => {
        const waiting = keys.map((k, i) => req(`w${i}`, k, "waiting"));
        const out = order.order(fakeView([], waiting, 1e9), (r) => (r as Fake).key)
          .waiting as Fake[];
        const expect = waiting.map((r, i) => ({ r, i })).sort((a, b) =>
          Math.fround(a.r.key) - Math.fround(b.r.key) || a.i - b.i
        ).map((x) => x.r.id);
        assert.deepEqual(out.map((r) => r.id), expect);
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("PreemptiveOrder preempts the lowest-ranked running requests outside the prefix, only when short", () => {
  const order = new PreemptiveOrder({ tokenBudget: 10_000, maxNumSeqs: 4, watermark: 0 });
  const running = [
    req("r1", 1, "running"),
    req("r2", 5, "running"),
    req("r3", 9, "running"),
    req("r4", 8, "running"),
  ];
  // Two short newcomers rank above r2..r4; the sequence cap (4) forces two victims: r3 then r4.
  const waiting = [req("w1", 0, "waiting"), req("w2", 2, "waiting")];
  const o = order.order(fakeView(running, waiting, 1000), (r) => (r as Fake).key);
  assert.deepEqual(o.running.map((r) => r.id), ["r1", "r2", "r4", "r3"]);
  assert.deepEqual(o.waiting.map((r) => r.id), ["w1", "w2"]);
  assert.deepEqual((o.preempt ?? []).map((r) => r.id), ["r3", "r4"]);
  // Newcomers ranked below every running request preempt nobody.
  const low = [req("w3", 50, "waiting")];
  assert.equal(
    order.order(fakeView(running.slice(0, 3), low, 1000), (r) => (r as Fake).key).preempt,
    undefined,
  );
  // Short of memory with no one to free it: nothing is thrown away.
  const big = [req("w4", 0, "waiting", 100_000)];
  const noRoom = new PreemptiveOrder({ tokenBudget: 1 << 20, maxNumSeqs: 100, watermark: 0 });
  assert.equal(noRoom.order(fakeView(running, big, 10), (r) => (r as Fake).key).preempt, undefined);
});
