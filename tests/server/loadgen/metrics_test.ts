import assert from "node:assert/strict";
import {
  calculateMetrics,
  mean,
  metricFields,
  percentile,
  std,
} from "../../../server/loadgen/metrics.ts";
import type { RequestOutput } from "../../../server/loadgen/request.ts";

function out(fields: Partial<RequestOutput>): RequestOutput {
  return {
    success: true,
    promptLen: 10,
    outputTokens: 0,
    ttft: 0,
    itl: [],
    latency: 0,
    generatedText: "",
    error: "",
    startTime: 0,
    ...fields,
  };
}

Deno.test("loadgen metrics: percentile interpolates like numpy, std is the population one", () => {
  assert.equal(percentile([1, 2, 3, 4], 50), 2.5);
  assert.ok(Math.abs(percentile([4, 1, 3, 2], 99) - 3.97) < 1e-12);
  assert.equal(percentile([5], 99), 5);
  assert.equal(percentile([], 99), 0);
  assert.equal(mean([1, 2, 3, 4]), 2.5);
  assert.equal(std([1, 2, 3, 4]), Math.sqrt(1.25));
});

Deno.test("loadgen metrics: TPOT, ITL, throughput and goodput by hand", () => {
  const outputs = [
    // 5 tokens: TTFT 0.1, then 4 gaps of 0.05; E2EL 0.3; TPOT (0.3 - 0.1) / 4 = 0.05.
    out({ outputTokens: 5, ttft: 0.1, itl: [0.05, 0.05, 0.05, 0.05], latency: 0.3, startTime: 0 }),
    // 1 token: no TPOT sample.
    out({ outputTokens: 1, ttft: 0.2, latency: 0.2, startTime: 0.5, promptLen: 20 }),
    out({ success: false, error: "HTTP 500" }),
  ];
  const m = calculateMetrics(outputs, 2, { ttft: 150 });
  assert.equal(m.completed, 2);
  assert.equal(m.failed, 1);
  assert.equal(m.totalInput, 30);
  assert.equal(m.totalOutput, 6);
  assert.deepEqual(m.outputLens, [5, 1, 0]);
  assert.equal(m.requestThroughput, 1);
  assert.equal(m.outputThroughput, 3);
  assert.equal(m.totalTokenThroughput, 18);
  // Only the first meets TTFT <= 150 ms.
  assert.equal(m.requestGoodput, 0.5);
  assert.equal(m.samples.tpot.length, 1);
  assert.ok(Math.abs(m.samples.tpot[0] - 0.05) < 1e-12);
  assert.deepEqual(m.samples.ttft, [0.1, 0.2]);
  assert.equal(m.samples.itl.length, 4);
  const f = metricFields(m, ["ttft", "tpot"], [99]);
  assert.ok(Math.abs(f.mean_ttft_ms - 150) < 1e-9);
  assert.ok(Math.abs(f.median_tpot_ms - 50) < 1e-9);
  assert.ok("p99_ttft_ms" in f && "std_tpot_ms" in f);
  assert.ok(!("mean_itl_ms" in f));
  // All six tokens fall in the first second; both requests overlap it.
  assert.equal(m.maxOutputTokensPerS, 6);
  assert.equal(m.maxConcurrentRequests, 2);
});
