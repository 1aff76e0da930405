import assert from "node:assert/strict";
import fc from "fast-check";
import {
  bestTtl,
  exponentialTtl,
  SortedWindow,
  TtlEstimator,
  type TtlSettings,
} from "../../../policies/continuum/ttl_estimator.ts";
import { Rng } from "../../../kernels/sim/rng.ts";

const SETTINGS: TtlSettings = {
  mode: "cost-benefit",
  fixedTtl: 2,
  fixedMaxPause: 2,
  coldStart: 100,
  coldMean: 1,
  etaWarmup: 20,
  historyLimit: 1000,
  queueWindow: 100,
  maxTtl: 30,
};

const gain = (sorted: number[], benefit: number, tau: number) =>
  tau === 0 ? 0 : sorted.filter((x) => x <= tau).length / sorted.length * benefit - tau;

Deno.test("bestTtl: the candidate with the largest expected saving", () => {
  // Gains: 0.25 - 0.1, 0.5 - 0.2, 0.75 - 0.4, 1 - 10: the third wins.
  assert.equal(bestTtl([0.1, 0.2, 0.4, 10], 1), 0.4);
  // Equal pauses count together: at 0.5, P = 2/3.
  assert.equal(bestTtl([0.5, 0.5, 1], 2), 1);
  assert.equal(bestTtl([0.5, 0.5, 1], 0.7), 0);
  assert.equal(bestTtl([], 5), 0);
  assert.equal(bestTtl([0.1, 0.2], 0), 0);
});

Deno.test("bestTtl: no candidate (0 or an observed pause) saves more (property)", () => {
  fc.assert(
    fc.property(
      fc.array(fc.double({ min: 0, max: 20, noNaN: true }), { minLength: 1, maxLength: 40 }),
      fc.double({ min: 0, max: 30, noNaN: true }),
      (xs, benefit) => {
        const sorted = xs.slice().sort((a, b) => a - b);
        const tau = bestTtl(sorted, benefit);
        assert.ok(tau === 0 || sorted.includes(tau));
        const g = gain(sorted, benefit, tau);
        for (const c of [0, ...sorted]) assert.ok(gain(sorted, benefit, c) <= g + 1e-9);
      },
    ),
  );
});

Deno.test("exponentialTtl: mean * ln(B / mean) when the benefit exceeds the mean pause", () => {
  assert.ok(Math.abs(exponentialTtl(1, Math.E) - 1) < 1e-12);
  assert.ok(Math.abs(exponentialTtl(2, 2 * Math.E ** 2) - 4) < 1e-12);
  assert.equal(exponentialTtl(1, 1), 0);
  assert.equal(exponentialTtl(1, 0.3), 0);
});

Deno.test("SortedWindow: the latest values, sorted (property)", () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: -50, max: 50 }), { maxLength: 200 }),
      fc.integer({ min: 1, max: 30 }),
      (xs, limit) => {
        const w = new SortedWindow(limit);
        for (const x of xs) w.add(x);
        assert.deepEqual(w.values, xs.slice(-limit).sort((a, b) => a - b));
      },
    ),
  );
});

Deno.test("TtlEstimator: eta is 1 for fixed program lengths and near 0 for memoryless ones", () => {
  const fixed = new TtlEstimator(SETTINGS);
  assert.equal(fixed.eta, 1, "1 before any program ends");
  for (let i = 0; i < 50; i++) fixed.recordProgram(10);
  assert.equal(fixed.eta, 1);
  const geometric = new TtlEstimator(SETTINGS);
  const rng = new Rng(3);
  for (let i = 0; i < 5000; i++) {
    let n = 1;
    while (rng.next() < 0.9) n++;
    geometric.recordProgram(n);
  }
  assert.ok(Math.abs(geometric.eta) < 0.1, `eta ${geometric.eta}`);
});

Deno.test("TtlEstimator: cold start, then the global, then the tool's own distribution", () => {
  const e = new TtlEstimator({ ...SETTINGS, coldStart: 10 });
  const turn = { tool: "fast", prefillSeconds: 3 };
  // Cold: exponential pauses of mean 1 s: ln 3.
  assert.ok(Math.abs(e.ttl(turn) - Math.log(3)) < 1e-12);
  for (let i = 0; i < 11; i++) e.recordPause("slow", 2.5); // warm overall, none of "fast"
  assert.equal(e.ttl(turn), 2.5, "the global distribution: every pause is 2.5 s");
  for (let i = 0; i < 11; i++) e.recordPause("fast", 0.2);
  assert.equal(e.ttl(turn), 0.2, "the tool's own distribution once it has enough");
  // Overall, half the pauses are 0.2 s: 1.5 - 0.2 s saved beats 3 - 2.5 s.
  assert.equal(e.ttl({ ...turn, tool: "other" }), 0.2);
});

Deno.test("TtlEstimator: queueing of returning turns raises the benefit; pins are bounded", () => {
  const e = new TtlEstimator({ ...SETTINGS, coldStart: 0, maxTtl: 5, queueWindow: 2 });
  for (const x of [1, 4, 8]) e.recordPause(undefined, x);
  const turn = { tool: undefined, prefillSeconds: 0.5 };
  assert.equal(e.ttl(turn), 0, "0.5 s of recompute is not worth a 1 s pin");
  e.recordQueueing(100);
  e.recordQueueing(6);
  e.recordQueueing(10); // the window keeps 6 and 10: mean 8
  assert.equal(e.meanQueueing, 8);
  assert.equal(e.ttl(turn), 1, "8.5 s at stake: 1/3 x 8.5 - 1 beats 2/3 x 8.5 - 4");
  e.recordQueueing(200);
  e.recordQueueing(200);
  assert.equal(e.ttl(turn), 5, "200.5 s at stake makes 8 s the best pin, cut to maxTtl");
  const fixed = new TtlEstimator({ ...SETTINGS, mode: "fixed", fixedTtl: 2, fixedMaxPause: 2 });
  assert.equal(fixed.ttl(turn), 2);
});

Deno.test("TtlEstimator: a successor takes over the observations", () => {
  const a = new TtlEstimator({ ...SETTINGS, coldStart: 2 });
  for (let i = 0; i < 3; i++) a.recordPause("ls", 0.3);
  a.recordQueueing(4);
  const b = new TtlEstimator({ ...SETTINGS, coldStart: 2 });
  b.importState(a.exportState());
  assert.equal(b.pausesSeen, 3);
  assert.equal(b.meanQueueing, 4);
  const turn = { tool: "ls", prefillSeconds: 1 };
  assert.equal(b.ttl(turn), a.ttl(turn));
});
