import assert from "node:assert/strict";
import fc from "fast-check";
import { sendTimes } from "../../../server/loadgen/arrivals.ts";

Deno.test("loadgen arrivals: infinite rate sends everything at once", () => {
  assert.deepEqual(sendTimes(4, Infinity, 1, 0), [0, 0, 0, 0]);
});

Deno.test("loadgen arrivals: increasing, last send at n / rate, seeded", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 300 }),
      fc.double({ min: 0.1, max: 1000, noNaN: true }),
      fc.double({ min: 0.1, max: 10, noNaN: true }),
      fc.integer({ min: 0, max: 1000 }),
      (n, rate, burstiness, seed) => {
        const t = sendTimes(n, rate, burstiness, seed);
        assert.equal(t.length, n);
        for (let i = 1; i < n; i++) assert.ok(t[i] >= t[i - 1]);
        assert.ok(Math.abs(t[n - 1] - n / rate) <= 1e-9 * (n / rate));
        assert.deepEqual(sendTimes(n, rate, burstiness, seed), t);
      },
    ),
  );
});

Deno.test("loadgen arrivals: lower burstiness gives burstier gaps", () => {
  const cv = (b: number) => {
    const t = sendTimes(4000, 10, b, 1);
    const gaps = t.map((x, i) => x - (i ? t[i - 1] : 0));
    const m = gaps.reduce((a, b) => a + b) / gaps.length;
    const sd = Math.sqrt(gaps.reduce((a, g) => a + (g - m) ** 2, 0) / gaps.length);
    return sd / m;
  };
  // Gamma with shape k has CV 1 / sqrt(k).
  assert.ok(Math.abs(cv(1) - 1) < 0.1);
  assert.ok(Math.abs(cv(0.25) - 2) < 0.25);
  assert.ok(cv(4) < 0.6);
});
