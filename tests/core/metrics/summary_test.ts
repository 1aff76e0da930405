import assert from "node:assert/strict";
import fc from "fast-check";
import { summarize } from "../../../core/metrics/summary.ts";
import { recordRequest, type RequestRecord } from "../../../core/metrics/request_metrics.ts";
import {
  distribution,
  NumberList,
  percentile,
  RunLengthList,
  std,
  weightedDistribution,
} from "../../../core/metrics/stats.ts";
import type { RequestEvent } from "../../../core/types.ts";

const close = (a: number, b: number, what: string) =>
  assert(Math.abs(a - b) < 1e-9, `${what}: got ${a}, expected ${b}`);

Deno.test("stats: percentiles interpolate like numpy", () => {
  const xs = [1, 2, 3, 4];
  close(percentile(xs, 50), 2.5, "p50");
  close(percentile(xs, 90), 3.7, "p90"); // rank 2.7 -> 3 + 0.7
  close(percentile(xs, 99), 3.97, "p99");
  close(percentile([5], 99), 5, "single");
  close(std([2, 4, 4, 4, 5, 5, 7, 9]), 2, "population std");
  assert.equal(percentile([], 50), 0);
});

Deno.test("stats: a run-length list summarizes exactly like the expanded list", () => {
  fc.assert(fc.property(
    fc.array(fc.tuple(fc.integer({ min: 0, max: 20 }), fc.integer({ min: 1, max: 5 })), {
      minLength: 1,
      maxLength: 30,
    }),
    (runs) => {
      const rl = new RunLengthList();
      const flat = new NumberList();
      for (const [v, c] of runs) {
        for (let i = 0; i < c; i++) {
          rl.push(v / 10);
          flat.push(v / 10);
        }
      }
      const { values, counts } = rl.runs();
      const a = weightedDistribution(values, counts, [50, 90, 99], 1000);
      const b = distribution(flat.view().map((x) => x * 1000), [50, 90, 99]);
      for (const k of ["p50", "p90", "p99"]) close(a.percentiles[k], b.percentiles[k], k);
      close(a.mean, b.mean, "mean");
      close(a.std, b.std, "std");
      assert.equal(rl.length, flat.length);
    },
  ));
});

function feed(
  id: string,
  arrival: number,
  firstScheduled: number,
  times: number[],
  itl: NumberList,
  out: RequestRecord[],
): void {
  const listen = recordRequest(10, (r) => out.push(r), itl);
  for (const t of times) listen({ type: "token", id, token: 5, text: "", time: t });
  const fin: RequestEvent = {
    type: "finish",
    id,
    reason: "stop",
    text: "",
    usage: { promptTokens: 10, completionTokens: times.length, cachedTokens: 0 },
    time: times[times.length - 1],
    arrivalTime: arrival,
    firstScheduledTime: firstScheduled,
    firstTokenTime: times[0],
    lastTokenTime: times[times.length - 1],
    maxTokenGap: Math.max(0, ...times.slice(1).map((t, i) => t - times[i])),
    numPreemptions: 0,
  };
  listen(fin);
}

Deno.test("summary: TTFT, TPOT, ITL, E2EL and goodput by hand", () => {
  const itl = new NumberList();
  const recs: RequestRecord[] = [];
  // A: arrives 0, scheduled 0.5, tokens at 1, 2, 4 -> TTFT 1, E2EL 4, TPOT (4-1)/2 = 1.5,
  //    gaps 1 and 2, max gap 2.
  feed("a", 0, 0.5, [1, 2, 4], itl, recs);
  // B: arrives 1, scheduled 1, tokens at 3, 3.5 -> TTFT 2, E2EL 2.5, TPOT 0.5, gap 0.5.
  feed("b", 1, 1, [3, 3.5], itl, recs);
  // C: one token at 5, arrived 2 -> TTFT 3, E2EL 3, no TPOT.
  feed("c", 2, 4, [5], itl, recs);
  const s = summarize(recs, itl.view(), { duration: 5, slo: { ttft: 2000 } });
  assert.equal(s.completed, 3);
  assert.equal(s.total_input_tokens, 30);
  assert.equal(s.total_output_tokens, 6);
  close(s.request_throughput, 3 / 5, "req/s");
  close(s.output_throughput, 6 / 5, "out tok/s");
  close(s.total_token_throughput, 36 / 5, "tok/s");
  close(s.ttft_ms.mean, 2000, "mean ttft");
  close(s.ttft_ms.median, 2000, "median ttft");
  close(s.tpot_ms.mean, 1000, "mean tpot"); // (1.5 + 0.5) / 2, C excluded
  close(s.itl_ms.mean, (1000 + 2000 + 500) / 3, "mean itl");
  close(s.itl_ms.median, 1000, "median itl");
  close(s.e2el_ms.mean, (4 + 2.5 + 3) / 3 * 1000, "mean e2el");
  close(s.scheduling_delay_ms.mean, (0.5 + 0 + 2) / 3 * 1000, "sched delay");
  // Largest gaps 2, 0.5 and 0 s: median 500 ms, p99 at rank 1.98 = 500 + 0.98 * 1500.
  close(s.max_tpot_ms.median, 500, "max-tpot median");
  close(s.max_tpot_ms.percentiles.p99, 1970, "max-tpot p99");
  // Goodput: TTFT <= 2 s holds for A (1 s) and B (2 s), not C (3 s).
  close(s.request_goodput!, 2 / 5, "goodput");
  close(s.token_goodput!, (13 + 12) / 5, "token goodput");
  close(s.slo_attainment!, 2 / 3, "attainment");
});

Deno.test("summary: aborted requests are failures, not completions", () => {
  const recs: RequestRecord[] = [];
  const listen = recordRequest(4, (r) => recs.push(r));
  listen({
    type: "finish",
    id: "x",
    reason: "abort",
    text: "",
    usage: { promptTokens: 4, completionTokens: 0, cachedTokens: 0 },
    time: 1,
    arrivalTime: 0,
    firstScheduledTime: -1,
    firstTokenTime: -1,
    lastTokenTime: -1,
    maxTokenGap: 0,
    numPreemptions: 0,
  });
  const s = summarize(recs, [], { duration: 1 });
  assert.equal(s.completed, 0);
  assert.equal(s.failed, 1);
  assert.equal(s.request_goodput, undefined);
});
