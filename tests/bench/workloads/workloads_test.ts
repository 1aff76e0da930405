import assert from "node:assert/strict";
import { generateWorkload } from "../../../bench/workloads/generate.ts";
import { workloadNames } from "../../../bench/workloads/catalog.ts";
import { arrivalTimes } from "../../../bench/workloads/arrivals.ts";
import { percentile, std } from "../../../core/metrics/stats.ts";
import { Rng } from "../../../kernels/sim/rng.ts";
import { UsageError } from "../../../core/errors.ts";

function near(x: number, want: number, tol: number, what: string): void {
  assert(Math.abs(x / want - 1) <= tol, `${what}: got ${x}, published ${want}`);
}

function spearman(a: number[], b: number[]): number {
  const rank = (xs: number[]) => {
    const idx = xs.map((_, i) => i).sort((i, j) => xs[i] - xs[j]);
    const r = new Array<number>(xs.length);
    idx.forEach((i, k) => r[i] = k);
    return r;
  };
  const ra = rank(a), rb = rank(b);
  const n = a.length;
  let d2 = 0;
  for (let i = 0; i < n; i++) d2 += (ra[i] - rb[i]) ** 2;
  return 1 - 6 * d2 / (n * (n * n - 1));
}

const N = 20000;

Deno.test("workloads: sharegpt matches its published percentiles", () => {
  const w = generateWorkload({ workload: "sharegpt", requests: N, seed: 1 });
  const p = w.map((r) => r.promptLength), o = w.map((r) => r.outputLength);
  near(percentile(p, 50), 1730, 0.05, "prompt p50");
  near(percentile(p, 90), 5696, 0.05, "prompt p90");
  near(percentile(o, 50), 415, 0.05, "output p50");
  near(percentile(o, 90), 834, 0.05, "output p90");
  assert(Math.abs(spearman(p, o)) < 0.05, "sharegpt lengths are independent");
  // The engine never sees the true length as the cap.
  assert(w.every((r) => r.maxTokens! >= r.outputLength && r.maxTokens! >= 4096));
});

Deno.test("workloads: sharegpt-o1 keeps its means and rank correlation", () => {
  const w = generateWorkload({ workload: "sharegpt-o1", requests: N, seed: 2 });
  const p = w.map((r) => r.promptLength), o = w.map((r) => r.outputLength);
  near(percentile(o, 50), 1954, 0.05, "output p50");
  near(percentile(p, 50), 209, 0.08, "prompt p50");
  near(spearman(p, o), 0.3, 0.2, "spearman");
});

Deno.test("workloads: dist-1/2/3 are the published uniform ranges", () => {
  const ranges: Record<string, [number, number, number, number]> = {
    "dist-1": [32, 4096, 2048, 4096],
    "dist-2": [3000, 5000, 3000, 5000],
    "dist-3": [2048, 4096, 32, 4096],
  };
  for (const [name, [plo, phi, olo, ohi]] of Object.entries(ranges)) {
    const w = generateWorkload({ workload: name, requests: 5000, seed: 3 });
    assert(w.every((r) => r.promptLength >= plo && r.promptLength <= phi), name);
    assert(w.every((r) => r.outputLength >= olo && r.outputLength <= ohi), name);
    const mean = w.reduce((a, r) => a + r.outputLength, 0) / w.length;
    near(mean, (olo + ohi) / 2, 0.03, `${name} output mean`);
  }
});

Deno.test("workloads: chat-longtail has short prompts and a tail at the cap", () => {
  const w = generateWorkload({ workload: "chat-longtail", requests: N, seed: 4 });
  const atCap = w.filter((r) => r.outputLength === 8192).length / w.length;
  assert(atCap > 0.015 && atCap < 0.025, `fraction at cap ${atCap}`);
  assert(percentile(w.map((r) => r.promptLength), 50) < 60);
});

Deno.test("workloads: every workload is seeded and clips to the model context", () => {
  for (const name of workloadNames()) {
    const a = generateWorkload({ workload: name, requests: 200, seed: 9, maxModelLen: 2048 });
    const b = generateWorkload({ workload: name, requests: 200, seed: 9, maxModelLen: 2048 });
    assert.deepEqual(a, b, name);
    assert(a.every((r) => r.promptLength + r.outputLength <= 2048 && r.promptLength >= 1));
  }
  const burst = generateWorkload({ workload: "burst", requests: 50, seed: 1 });
  assert(burst.every((r) => r.arrivalTime === 0));
});

Deno.test("arrivals: Poisson and gamma have the asked rate and variability", () => {
  const n = 50000;
  const gaps = (t: number[]) => t.map((x, i) => x - (i > 0 ? t[i - 1] : 0));
  const pois = gaps(arrivalTimes({ kind: "poisson", rate: 4 }, n, new Rng(1)));
  const mean = pois.reduce((a, b) => a + b, 0) / n;
  near(mean, 0.25, 0.03, "poisson mean gap");
  near(std(pois) / mean, 1, 0.03, "poisson CV");
  const gam = gaps(arrivalTimes({ kind: "gamma", rate: 2, cv: 3 }, n, new Rng(2)));
  const gm = gam.reduce((a, b) => a + b, 0) / n;
  near(gm, 0.5, 0.06, "gamma mean gap");
  near(std(gam) / gm, 3, 0.1, "gamma CV");
});

Deno.test("workloads: bad names, counts and rates are usage errors", () => {
  assert.throws(() => generateWorkload({ workload: "nope", requests: 5, seed: 0 }), UsageError);
  assert.throws(() => generateWorkload({ workload: "sharegpt", requests: 0, seed: 0 }), UsageError);
  assert.throws(
    () =>
      generateWorkload({
        workload: "sharegpt",
        requests: 5,
        seed: 0,
        arrival: { kind: "poisson", rate: -1 },
      }),
    UsageError,
  );
  assert.throws(() => arrivalTimes({ kind: "gamma", rate: 1, cv: 0 }, 3, new Rng(0)), UsageError);
});
