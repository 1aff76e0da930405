/**
 * The benchmark summary, with `vllm bench serve` semantics and names (milliseconds,
 * `mean_ttft_ms`, `p99_itl_ms`, `request_goodput`, ...), plus the metrics the scheduling
 * papers use: P99 time-between-tokens including preemption stalls and the median
 * scheduling delay (Sarathi-Serve capacity), max-TPOT per request and token goodput under
 * an SLA (Past-Future), latency per output token and max waiting time (Learning to Rank).
 *
 * @module
 */

import { e2el, type RequestRecord, succeeded, tpot, ttft } from "./request_metrics.ts";
import {
  type Distribution,
  distribution,
  mean,
  type RunLengthList,
  weightedDistribution,
} from "./stats.ts";

/** Per-request service-level objectives, milliseconds (vLLM's `--goodput` keys). */
export interface Slo {
  /** Largest TTFT. */
  ttft?: number;
  /** Largest TPOT. */
  tpot?: number;
  /** Largest E2EL. */
  e2el?: number;
  /** Largest gap between two tokens of a request (Past-Future max-TPOT). */
  maxTpot?: number;
}

/** Options of {@link summarize}. */
export interface SummaryOptions {
  /** Benchmark duration, seconds (from the start to the last finish). */
  duration: number;
  /** Percentiles to report (default 50, 90, 99). */
  percentiles?: number[];
  /** SLOs for goodput; goodput is reported only when at least one is set. */
  slo?: Slo;
}

/** A metric's distribution in milliseconds. */
export type MsDistribution = Distribution;

/** The summary of a run. */
export interface ServeSummary {
  /** Requests that completed. */
  completed: number;
  /** Requests that failed (aborted or errored). */
  failed: number;
  /** Seconds from the start to the last finish. */
  duration_s: number;
  /** Prompt tokens of completed requests. */
  total_input_tokens: number;
  /** Output tokens of completed requests. */
  total_output_tokens: number;
  /** Completed requests per second. */
  request_throughput: number;
  /** Output tokens per second. */
  output_throughput: number;
  /** Prompt plus output tokens per second. */
  total_token_throughput: number;
  /** Requests per second meeting every SLO (when SLOs are given). */
  request_goodput?: number;
  /** Prompt plus output tokens per second of requests meeting every SLO (when given). */
  token_goodput?: number;
  /** Fraction of completed requests meeting every SLO (when given). */
  slo_attainment?: number;
  /** Time to first token, ms. */
  ttft_ms: MsDistribution;
  /** Time per output token, ms (requests with at least 2 tokens). */
  tpot_ms: MsDistribution;
  /** Inter-token latency over all gaps of all requests, ms (preemption stalls included). */
  itl_ms: MsDistribution;
  /** End-to-end latency, ms. */
  e2el_ms: MsDistribution;
  /** Arrival to first scheduling, ms. */
  scheduling_delay_ms: MsDistribution;
  /** Largest inter-token gap per request, ms. */
  max_tpot_ms: MsDistribution;
  /** E2EL divided by output tokens, ms per token (mean over requests). */
  mean_latency_per_token_ms: number;
  /** max(TTFT, largest gap) per request, mean, ms. */
  mean_max_waiting_ms: number;
  /** Requests preempted at least once. */
  preempted_requests: number;
}

const MS = 1000;

function ms(xs: number[], ps: readonly number[]): MsDistribution {
  return distribution(xs.map((x) => x * MS), ps);
}

/** Whether a completed request meets every given SLO (values in ms, inclusive). */
export function meetsSlo(r: RequestRecord, slo: Slo): boolean {
  // A request that never completed (aborted, refused, failed) meets no SLO.
  if (r.reason !== "stop" && r.reason !== "length") return false;
  if (slo.ttft !== undefined && ttft(r) * MS > slo.ttft) return false;
  if (slo.tpot !== undefined && tpot(r) * MS > slo.tpot) return false;
  if (slo.e2el !== undefined && e2el(r) * MS > slo.e2el) return false;
  if (slo.maxTpot !== undefined && r.maxGap * MS > slo.maxTpot) return false;
  return true;
}

/**
 * Summarize finished requests. `itl` holds every inter-token gap of the completed
 * requests, in seconds (collected as tokens stream, so no per-token list is kept), as a
 * plain list or as a run-length list.
 */
export function summarize(
  records: readonly RequestRecord[],
  itl: ArrayLike<number> | RunLengthList,
  o: SummaryOptions,
): ServeSummary {
  const ps = o.percentiles ?? [50, 90, 99];
  const done = records.filter(succeeded);
  const dur = o.duration > 0 ? o.duration : 1;
  let input = 0, output = 0, preempted = 0;
  const ttfts: number[] = [], tpots: number[] = [], e2els: number[] = [];
  const delays: number[] = [], gaps: number[] = [], perTok: number[] = [], waits: number[] = [];
  for (const r of done) {
    input += r.promptTokens;
    output += r.outputTokens;
    ttfts.push(ttft(r));
    if (r.outputTokens > 1) tpots.push(tpot(r));
    e2els.push(e2el(r));
    if (r.firstScheduled >= 0) delays.push(r.firstScheduled - r.arrival);
    gaps.push(r.maxGap);
    perTok.push(e2el(r) / r.outputTokens);
    waits.push(Math.max(ttft(r), r.maxGap));
    if (r.preemptions > 0) preempted++;
  }
  const itlDist = "runs" in itl
    ? weightedDistribution(itl.runs().values, itl.runs().counts, ps, MS)
    : distribution(Float64Array.from(itl as ArrayLike<number>, (x) => x * MS), ps);
  const s: ServeSummary = {
    completed: done.length,
    failed: records.length - done.length,
    duration_s: o.duration,
    total_input_tokens: input,
    total_output_tokens: output,
    request_throughput: done.length / dur,
    output_throughput: output / dur,
    total_token_throughput: (input + output) / dur,
    ttft_ms: ms(ttfts, ps),
    tpot_ms: ms(tpots, ps),
    itl_ms: itlDist,
    e2el_ms: ms(e2els, ps),
    scheduling_delay_ms: ms(delays, ps),
    max_tpot_ms: ms(gaps, ps),
    mean_latency_per_token_ms: mean(perTok) * MS,
    mean_max_waiting_ms: mean(waits) * MS,
    preempted_requests: preempted,
  };
  const slo = o.slo;
  if (slo && Object.values(slo).some((v) => v !== undefined)) {
    let good = 0, goodTokens = 0;
    for (const r of done) {
      if (meetsSlo(r, slo)) {
        good++;
        goodTokens += r.promptTokens + r.outputTokens;
      }
    }
    s.request_goodput = good / dur;
    s.token_goodput = goodTokens / dur;
    s.slo_attainment = done.length > 0 ? good / done.length : 0;
  }
  return s;
}
