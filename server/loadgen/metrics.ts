/**
 * Benchmark metrics with `vllm bench serve` semantics, so results compare with theirs:
 * TTFT, TPOT = (E2EL - TTFT) / (n - 1) over requests with n > 1 output tokens, ITL over
 * every gap, E2EL; mean, median, population standard deviation and linearly interpolated
 * percentiles (numpy's default); goodput under SLOs in milliseconds.
 *
 * @module
 */

import type { RequestOutput } from "./request.ts";

/** Percentile with linear interpolation between closest ranks (numpy's default). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const s = [...values].sort((a, b) => a - b);
  const rank = (p / 100) * (s.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return s[lo] + (s[hi] - s[lo]) * (rank - lo);
}

/** Arithmetic mean; 0 for none. */
export function mean(values: readonly number[]): number {
  if (values.length === 0) return 0;
  let s = 0;
  for (const v of values) s += v;
  return s / values.length;
}

/** Population standard deviation (numpy's default); 0 for none. */
export function std(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const m = mean(values);
  let s = 0;
  for (const v of values) s += (v - m) * (v - m);
  return Math.sqrt(s / values.length);
}

/** Goodput SLOs in milliseconds (`--goodput ttft:500 tpot:50`). */
export type GoodputSlos = Partial<Record<"ttft" | "tpot" | "e2el", number>>;

/** Everything computed from the outputs. */
export interface BenchmarkMetrics {
  /** Successful requests. */
  completed: number;
  /** Failed requests. */
  failed: number;
  /** Prompt tokens of successful requests. */
  totalInput: number;
  /** Output tokens of successful requests. */
  totalOutput: number;
  /** Completed per second. */
  requestThroughput: number;
  /** Completed within every SLO per second. */
  requestGoodput: number;
  /** Output tokens per second. */
  outputThroughput: number;
  /** Prompt plus output tokens per second. */
  totalTokenThroughput: number;
  /** Output lengths per request (0 for failures). */
  outputLens: number[];
  /** Per-metric samples in seconds. */
  samples: { ttft: number[]; tpot: number[]; itl: number[]; e2el: number[] };
  /** Most output tokens in one wall second. */
  maxOutputTokensPerS: number;
  /** Most requests in flight during one wall second. */
  maxConcurrentRequests: number;
}

/** Compute the metrics of a run that lasted `duration` seconds. */
export function calculateMetrics(
  outputs: readonly RequestOutput[],
  duration: number,
  slos: GoodputSlos = {},
): BenchmarkMetrics {
  const outputLens: number[] = [];
  const ttft: number[] = [];
  const tpot: number[] = [];
  const allTpot: number[] = [];
  const itl: number[] = [];
  const e2el: number[] = [];
  let totalInput = 0;
  let completed = 0;
  let good = 0;
  for (const o of outputs) {
    if (!o.success) {
      outputLens.push(0);
      continue;
    }
    // Without usage, count chunks with text (one token each on Baton and vLLM).
    const n = o.outputTokens || (o.ttft > 0 ? o.itl.length + 1 : 0);
    outputLens.push(n);
    totalInput += o.promptLen;
    let t = 0;
    if (n > 1) {
      t = (o.latency - o.ttft) / (n - 1);
      tpot.push(t);
    }
    allTpot.push(t);
    itl.push(...o.itl);
    ttft.push(o.ttft);
    e2el.push(o.latency);
    completed++;
    const ok = (slos.ttft === undefined || o.ttft * 1000 <= slos.ttft) &&
      (slos.tpot === undefined || t * 1000 <= slos.tpot) &&
      (slos.e2el === undefined || o.latency * 1000 <= slos.e2el);
    if (ok) good++;
  }
  const totalOutput = outputLens.reduce((a, b) => a + b, 0);
  const peak = peaks(outputs);
  return {
    completed,
    failed: outputs.length - completed,
    totalInput,
    totalOutput,
    requestThroughput: completed / duration,
    requestGoodput: Object.keys(slos).length > 0 ? good / duration : 0,
    outputThroughput: totalOutput / duration,
    totalTokenThroughput: (totalInput + totalOutput) / duration,
    outputLens,
    samples: { ttft, tpot, itl, e2el },
    maxOutputTokensPerS: peak.tokens,
    maxConcurrentRequests: peak.concurrent,
  };
}

/** Peak output tokens and requests in flight per one-second bucket (vLLM's definition). */
function peaks(outputs: readonly RequestOutput[]): { tokens: number; concurrent: number } {
  const ok = outputs.filter((o) => o.success);
  if (ok.length === 0) return { tokens: 0, concurrent: 0 };
  const start = Math.min(...ok.map((o) => o.startTime));
  const end = Math.max(...ok.map((o) => o.startTime + o.latency));
  const buckets = Math.ceil(end - start) + 1;
  const tokens = new Float64Array(buckets);
  const conc = new Float64Array(buckets);
  for (const o of ok) {
    let t = o.startTime + o.ttft;
    const add = (time: number) => {
      const b = Math.floor(time - start);
      if (b >= 0 && b < buckets) tokens[b]++;
    };
    add(t);
    for (const gap of o.itl) {
      t += gap;
      add(t);
    }
    const from = Math.floor(o.startTime - start);
    const to = Math.floor(o.startTime + o.latency - start);
    for (let s = from; s <= to && s < buckets; s++) conc[s]++;
  }
  return { tokens: Math.max(...tokens), concurrent: Math.max(...conc) };
}

/** The metric fields of vLLM's result JSON (`mean_ttft_ms`, `p99_itl_ms`, ...). */
export function metricFields(
  m: BenchmarkMetrics,
  selected: readonly string[],
  percentiles: readonly number[],
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of selected) {
    const v = m.samples[name as keyof BenchmarkMetrics["samples"]];
    if (v === undefined) continue;
    out[`mean_${name}_ms`] = mean(v) * 1000;
    out[`median_${name}_ms`] = percentile(v, 50) * 1000;
    out[`std_${name}_ms`] = std(v) * 1000;
    for (const p of percentiles) {
      out[`p${p}_${name}_ms`] = percentile(v, p) * 1000;
    }
  }
  return out;
}
