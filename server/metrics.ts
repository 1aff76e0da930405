/**
 * Prometheus text exposition (format 0.0.4) with vLLM's metric names, so dashboards and
 * routers built for vLLM read Baton unchanged. Gauges and engine-wide counters are read
 * from the engine at scrape time; latency histograms are fed by the server per token.
 *
 * @module
 */

/** Histogram bucket bounds in seconds, as vLLM declares them. */
export const TTFT_BUCKETS: readonly number[] = [
  0.001,
  0.005,
  0.01,
  0.02,
  0.04,
  0.06,
  0.08,
  0.1,
  0.25,
  0.5,
  0.75,
  1,
  2.5,
  5,
  7.5,
  10,
  20,
  40,
  80,
  160,
  640,
  2560,
];
/** Inter-token latency buckets, seconds. */
export const ITL_BUCKETS: readonly number[] = [
  0.01,
  0.025,
  0.05,
  0.075,
  0.1,
  0.15,
  0.2,
  0.3,
  0.4,
  0.5,
  0.75,
  1,
  2.5,
  5,
  7.5,
  10,
  20,
  40,
  80,
];
/** End-to-end latency buckets, seconds. */
export const E2E_BUCKETS: readonly number[] = [
  0.3,
  0.5,
  0.8,
  1,
  1.5,
  2,
  2.5,
  5,
  10,
  15,
  20,
  30,
  40,
  50,
  60,
  120,
  240,
  480,
  960,
  1920,
  7680,
];

/** A cumulative histogram with fixed bounds. */
export class Histogram {
  /** Upper bounds, ascending. */
  readonly bounds: readonly number[];
  /** Count per bucket (not cumulative), the last one is +Inf. */
  readonly counts: Float64Array;
  /** Sum of observations. */
  sum = 0;
  /** Number of observations. */
  count = 0;

  /** A histogram over `bounds` (ascending). */
  constructor(bounds: readonly number[]) {
    this.bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }

  /** Record one value. */
  observe(v: number): void {
    const b = this.bounds;
    let lo = 0;
    let hi = b.length;
    // First bucket whose bound is >= v (binary search: called once per streamed token).
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (b[mid] < v) lo = mid + 1;
      else hi = mid;
    }
    this.counts[lo]++;
    this.sum += v;
    this.count++;
  }
}

/** Engine figures read at scrape time. Missing ones are left out of the page. */
export interface EngineGauges {
  /** Requests running. */
  running?: number;
  /** Requests waiting. */
  waiting?: number;
  /** Fraction of KV blocks in use, 0..1. */
  kvUsage?: number;
  /** Preemptions so far (recompute and swap). */
  preemptions?: number;
  /** Preemptions that swapped KV to host memory so far. */
  swapOuts?: number;
  /** Host swap slots in use (KV blocks of swapped-out requests). */
  swapBlocksUsed?: number;
  /** Prompt tokens processed so far. */
  promptTokens?: number;
  /** Tokens generated so far. */
  generationTokens?: number;
  /** Cached KV blocks evicted so far. */
  evictions?: number;
  /** Tokens recomputed after preemption so far. */
  recomputedTokens?: number;
  /** Prompt tokens served from the prefix cache so far. */
  prefixHitTokens?: number;
  /** Of them, copied back from the host KV cache. */
  hostHitTokens?: number;
  /** Draft tokens verified so far (speculative decoding). */
  draftTokens?: number;
  /** Of them, accepted. */
  acceptedDraftTokens?: number;
  /** Total decision seconds per slot and plugin. */
  decisionSeconds?: { slot: string; plugin: string; seconds: number }[];
}

/** Everything `/metrics` shows. */
export class ServerMetrics {
  /** Time to first token, from the request's arrival at the server. */
  readonly ttft: Histogram = new Histogram(TTFT_BUCKETS);
  /** Time between consecutive tokens of a request. */
  readonly itl: Histogram = new Histogram(ITL_BUCKETS);
  /** Request latency from arrival to its last token. */
  readonly e2e: Histogram = new Histogram(E2E_BUCKETS);
  /** Finished requests per finish reason. */
  readonly finished: Map<string, number> = new Map();
  /** HTTP responses per status code. */
  readonly responses: Map<number, number> = new Map();
  /** Requests turned away because the queue was full. */
  rejected = 0;
  readonly #model: string;

  /** Metrics labelled with `model_name`. */
  constructor(modelName: string) {
    this.#model = modelName;
  }

  /** Count one finished request. */
  finish(reason: string): void {
    this.finished.set(reason, (this.finished.get(reason) ?? 0) + 1);
  }

  /** Count one response. */
  response(status: number): void {
    this.responses.set(status, (this.responses.get(status) ?? 0) + 1);
  }

  /** The page in Prometheus text format. */
  render(g: EngineGauges): string {
    const m = `model_name="${escapeLabel(this.#model)}"`;
    const out: string[] = [];
    const scalar = (name: string, type: string, help: string, v: number | undefined) => {
      if (v === undefined || !Number.isFinite(v)) return;
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name}{${m}} ${fmt(v)}`);
    };
    scalar("vllm:num_requests_running", "gauge", "Requests in the running batch.", g.running);
    scalar("vllm:num_requests_waiting", "gauge", "Requests waiting to run.", g.waiting);
    scalar(
      "vllm:kv_cache_usage_perc",
      "gauge",
      "Fraction of KV blocks in use (1 = 100%).",
      g.kvUsage,
    );
    scalar("vllm:num_preemptions_total", "counter", "Preemptions.", g.preemptions);
    scalar("baton:swap_outs_total", "counter", "Preemptions that swapped KV out.", g.swapOuts);
    scalar(
      "baton:swap_blocks_used",
      "gauge",
      "Host swap slots holding swapped-out KV blocks.",
      g.swapBlocksUsed,
    );
    scalar("vllm:prompt_tokens_total", "counter", "Prompt tokens processed.", g.promptTokens);
    scalar("vllm:generation_tokens_total", "counter", "Tokens generated.", g.generationTokens);
    scalar("baton:kv_evictions_total", "counter", "Cached KV blocks evicted.", g.evictions);
    scalar(
      "vllm:prefix_cache_hits_total",
      "counter",
      "Prompt tokens served from the prefix cache.",
      g.prefixHitTokens,
    );
    scalar(
      "baton:host_cache_hit_tokens_total",
      "counter",
      "Prompt tokens copied back from the host KV cache.",
      g.hostHitTokens,
    );
    scalar(
      "vllm:spec_decode_num_draft_tokens_total",
      "counter",
      "Draft tokens verified.",
      g.draftTokens,
    );
    scalar(
      "vllm:spec_decode_num_accepted_tokens_total",
      "counter",
      "Draft tokens accepted.",
      g.acceptedDraftTokens,
    );
    scalar(
      "baton:recomputed_tokens_total",
      "counter",
      "Tokens recomputed after preemption.",
      g.recomputedTokens,
    );
    histogram(out, "vllm:time_to_first_token_seconds", "Time to first token.", m, this.ttft);
    histogram(out, "vllm:inter_token_latency_seconds", "Time between tokens.", m, this.itl);
    histogram(out, "vllm:e2e_request_latency_seconds", "Request latency, end to end.", m, this.e2e);
    out.push(
      "# HELP vllm:request_success_total Finished requests by finish reason.",
      "# TYPE vllm:request_success_total counter",
    );
    for (const [reason, n] of this.finished) {
      out.push(`vllm:request_success_total{${m},finished_reason="${escapeLabel(reason)}"} ${n}`);
    }
    scalar("baton:requests_rejected_total", "counter", "Requests refused with 429.", this.rejected);
    out.push(
      "# HELP baton:http_responses_total HTTP responses by status code.",
      "# TYPE baton:http_responses_total counter",
    );
    for (const [status, n] of this.responses) {
      out.push(`baton:http_responses_total{${m},status="${status}"} ${n}`);
    }
    if (g.decisionSeconds !== undefined) {
      out.push(
        "# HELP baton:plugin_decision_seconds_total Time spent in each plugin's decisions.",
        "# TYPE baton:plugin_decision_seconds_total counter",
      );
      for (const d of g.decisionSeconds) {
        out.push(
          `baton:plugin_decision_seconds_total{${m},slot="${escapeLabel(d.slot)}",plugin="${
            escapeLabel(d.plugin)
          }"} ${fmt(d.seconds)}`,
        );
      }
    }
    return out.join("\n") + "\n";
  }
}

function histogram(out: string[], name: string, help: string, labels: string, h: Histogram): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`);
  let cum = 0;
  for (let i = 0; i < h.bounds.length; i++) {
    cum += h.counts[i];
    out.push(`${name}_bucket{${labels},le="${fmt(h.bounds[i])}"} ${cum}`);
  }
  cum += h.counts[h.bounds.length];
  out.push(`${name}_bucket{${labels},le="+Inf"} ${cum}`);
  out.push(`${name}_sum{${labels}} ${fmt(h.sum)}`, `${name}_count{${labels}} ${h.count}`);
}

function fmt(v: number): string {
  return Number.isInteger(v) ? `${v}.0` : String(v);
}

function escapeLabel(s: string): string {
  return s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}
