import assert from "node:assert/strict";
import fc from "fast-check";
import { QueueStates } from "../../../policies/ltr/queue_states.ts";
import type { RequestView } from "../../../core/types.ts";

const view = (id: string): RequestView => ({ id }) as unknown as RequestView;

Deno.test("QueueStates: states stay parallel to changing queues, made once per request", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          remove: fc.array(fc.nat(), { maxLength: 25 }),
          head: fc.nat({ max: 3 }),
          tail: fc.nat({ max: 3 }),
          move: fc.boolean(),
        }),
        { minLength: 1, maxLength: 15 },
      ),
      (changes) => {
        let made = 0, id = 0;
        const seen = new Set<string>();
        const qs = new QueueStates((r) => ({ id: r.id, n: made++ }));
        const fresh = () => view(`r${id++}`);
        let lists: [RequestView[], RequestView[]] = [
          Array.from({ length: 10 }, fresh),
          Array.from({ length: 30 }, fresh),
        ];
        let last: [readonly RequestView[] | undefined, readonly RequestView[] | undefined] = [
          undefined,
          undefined,
        ];
        for (const c of changes) {
          // Waiting: removals anywhere, some of them admitted to running; arrivals at the
          // tail, preempted requests back at the head.
          const w = lists[1];
          const gone = new Set(c.remove.map((k) => w[k % Math.max(1, w.length)]));
          const admitted = w.filter((r) => gone.has(r)).slice(0, 2);
          const back = c.move ? lists[0].slice(0, 1) : [];
          lists = [
            [...lists[0].filter((r) => !back.includes(r)), ...admitted],
            [
              ...back,
              ...Array.from({ length: c.head }, fresh),
              ...w.filter((r) => !gone.has(r)),
              ...Array.from({ length: c.tail }, fresh),
            ],
          ];
          for (const q of [0, 1] as const) {
            const list = Object.freeze(lists[q].slice());
            const prev = new Int32Array(list.length);
            const st = qs.of(list, q, prev);
            assert.equal(st.length, list.length);
            for (let i = 0; i < list.length; i++) {
              seen.add(list[i].id);
              assert.equal(st[i], qs.get(list[i]));
              assert.equal(st[i].id, list[i].id);
              if (prev[i] >= 0) assert.equal(last[q]![prev[i]], list[i]);
            }
            // A request that stayed in the queue is matched when few were removed before it.
            if (last[q] && gone.size <= 5 && q === 1) {
              const stayed = list.filter((r) => last[q]!.includes(r)).length;
              assert.equal([...prev].filter((p) => p >= 0).length, stayed);
            }
            last = q === 0 ? [list, last[1]] : [last[0], list];
          }
        }
        assert.equal(made, seen.size);
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test("QueueStates: the same array gives the same states; forgotten requests are made anew", () => {
  const qs = new QueueStates((r) => ({ id: r.id }));
  const list = Object.freeze([view("a"), view("b")]);
  const first = qs.of(list, 1);
  const prev = new Int32Array(2).fill(-1);
  assert.equal(qs.of(list, 1, prev), first);
  assert.deepEqual([...prev], [0, 1]);
  const a = qs.peek("a");
  assert.ok(a);
  qs.delete("a");
  assert.equal(qs.peek("a"), undefined);
  assert.notEqual(qs.get(view("a")), a);
});
