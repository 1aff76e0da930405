import assert from "node:assert/strict";
import fc from "fast-check";
import { orderBits, PreemptiveOrder } from "../../../policies/ltr/preemptive_order.ts";
import { QueueStates } from "../../../policies/ltr/queue_states.ts";
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

Deno.test("PreemptiveOrder keeps the exact order when queues and keys change step by step", () => {
  // Queues evolve as the engine's do (removals anywhere, insertions at the head and the
  // tail, frozen arrays, a few keys changing); the order is checked against a fresh sort
  // after every step, with keys filled per request and by a tracking filler alike.
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: 2 ** 31 - 1 }), { minLength: 20, maxLength: 20 }),
      fc.integer({ min: 0, max: 200 }),
      (seeds, size) => {
        let id = 0;
        const key = new Map<string, number>();
        const fresh = (rnd: number): Fake => {
          const r = req(`w${id++}`, 0, "waiting");
          // Few distinct float32 values: ties are common.
          key.set(r.id, rnd % 5 === 0 ? -1e30 : (rnd % 97) / 7);
          return r;
        };
        let list: Fake[] = Array.from({ length: size }, (_, i) => fresh(seeds[i % 20] + i));
        const tracked = new PreemptiveOrder({ tokenBudget: 1, maxNumSeqs: 1, watermark: 0 });
        const plain = new PreemptiveOrder({ tokenBudget: 1, maxNumSeqs: 1, watermark: 0 });
        const states = new QueueStates<{ id: string }>((r) => ({ id: r.id }));
        for (const s of seeds) {
          let x = s;
          const rnd = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0);
          // Remove a few anywhere, insert a few at the head and the tail.
          const removes = rnd() % 4 === 0 ? 30 : rnd() % 6;
          for (let k = 0; k < removes && list.length > 0; k++) {
            list = list.filter((_, i) => i !== rnd() % list.length);
          }
          const head = Array.from({ length: rnd() % 3 }, () => fresh(rnd()));
          const tail = Array.from({ length: rnd() % 3 }, () => fresh(rnd()));
          list = [...head, ...list, ...tail];
          for (let k = rnd() % 3; k > 0 && list.length > 0; k--) {
            key.set(list[rnd() % list.length].id, (rnd() % 11) - 5);
          }
          if (rnd() % 3 > 0) Object.freeze(list);
          const view = fakeView([], list, 1e9);
          const a = tracked.orderBy(view, (l, q, out, prev) => {
            const st = states.of(l, q, prev);
            for (let i = 0; i < l.length; i++) out[i] = key.get(st[i].id)!;
            return true;
          }).waiting.map((r) => r.id);
          const b = plain.order(view, (r) => key.get(r.id)!).waiting.map((r) => r.id);
          const expect = list.map((r, i) => ({ r, i })).sort((p, q) =>
            Math.fround(key.get(p.r.id)!) - Math.fround(key.get(q.r.id)!) || p.i - q.i
          ).map((e) => e.r.id);
          assert.deepEqual(a, expect);
          assert.deepEqual(b, expect);
          // The same frozen array again: the same answer.
          if (Object.isFrozen(list)) {
            assert.deepEqual(
              plain.order(view, (r) => key.get(r.id)!).waiting.map((r) => r.id),
              expect,
            );
          }
        }
      },
    ),
    { numRuns: 150 },
  );
});
