import assert from "node:assert/strict";
import fc from "fast-check";
import { LengthHistory } from "../../../policies/past_future/history.ts";
import { Rng } from "../../../kernels/sim/rng.ts";

Deno.test("history: starts with window/2 copies of the prior and keeps the last `window` lengths", () => {
  const h = new LengthHistory(6, 100);
  assert.deepEqual(h.values(), [100, 100, 100]);
  for (const v of [5, 9, 1, 7, 3]) h.push(v);
  assert.deepEqual(h.values(), [100, 5, 9, 1, 7, 3]);
  assert.deepEqual([...h.sorted], [1, 3, 5, 7, 9, 100]);
  h.push(4);
  assert.deepEqual(h.values(), [5, 9, 1, 7, 3, 4]);
  assert.deepEqual([...h.sorted], [1, 3, 4, 5, 7, 9]);
});

Deno.test("history: conditional draws lie in [generated, cap] and follow the recorded lengths", () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 1, max: 2000 }), { minLength: 1, maxLength: 50 }),
      fc.integer({ min: 0, max: 1500 }),
      fc.integer({ min: 1, max: 3000 }),
      fc.integer(),
      (lengths, g, cap, seed) => {
        const h = new LengthHistory(50, 10);
        lengths.forEach((v) => h.push(v));
        const rng = new Rng(seed);
        for (let k = 0; k < 20; k++) {
          const L = h.drawConditional(rng, g, cap);
          assert.ok(L >= Math.min(g, cap) && L <= Math.max(g, cap), `${L} outside [${g}, ${cap}]`);
          const u = h.draw(rng, cap);
          assert.ok(u <= cap);
        }
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test("history: a request past every recorded length is expected to run toward its cap", () => {
  const h = new LengthHistory(10, 50);
  for (let i = 0; i < 10; i++) h.push(50);
  const rng = new Rng(1);
  let sum = 0;
  for (let k = 0; k < 1000; k++) sum += h.drawConditional(rng, 100, 1000);
  // Support [100, 1000]: uniform between them, mean 550.
  assert.ok(Math.abs(sum / 1000 - 550) < 30, `mean ${sum / 1000}`);
  // Most of the mass sits at the recorded 50s for a fresh request.
  let small = 0;
  for (let k = 0; k < 1000; k++) if (h.drawConditional(rng, 0, 1000) <= 50) small++;
  assert.ok(small > 850, `${small} of 1000 draws at or below the history`);
});
