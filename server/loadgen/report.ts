/**
 * The result of `bench-serve` in `vllm bench serve`'s shapes: the terminal table and the
 * result JSON (same keys, same units), so numbers compare with theirs.
 *
 * @module
 */

import { type BenchmarkMetrics, mean, metricFields, percentile } from "./metrics.ts";
import type { RequestOutput } from "./request.ts";

/** Run settings recorded in the JSON. */
export interface RunInfo {
  /** "openai" or "openai-chat". */
  backend: string;
  /** `--label`, or null. */
  label: string | null;
  /** Model name. */
  modelId: string;
  /** Number of requests. */
  numPrompts: number;
  /** Requests per second (Infinity for all at once). */
  requestRate: number;
  /** Gamma shape of the gaps. */
  burstiness: number;
  /** `--max-concurrency`, or null. */
  maxConcurrency: number | null;
  /** Workload name. */
  workload: string;
  /** `--metadata KEY=VALUE` pairs. */
  metadata: Record<string, string>;
}

/** vLLM's result JSON. `detailed` keeps the per-request arrays. */
export function resultJson(
  info: RunInfo,
  m: BenchmarkMetrics,
  outputs: readonly RequestOutput[],
  duration: number,
  options: { selected: string[]; percentiles: number[]; goodput: boolean; detailed: boolean },
): Record<string, unknown> {
  const d = new Date();
  const pad = (n: number) => String(n).padStart(2, "0");
  const out: Record<string, unknown> = {
    date: `${d.getFullYear()}${pad(d.getMonth() + 1)}${pad(d.getDate())}-${pad(d.getHours())}${
      pad(d.getMinutes())
    }${pad(d.getSeconds())}`,
    endpoint_type: info.backend,
    backend: info.backend,
    label: info.label,
    model_id: info.modelId,
    tokenizer_id: info.modelId,
    num_prompts: info.numPrompts,
    ...info.metadata,
    request_rate: Number.isFinite(info.requestRate) ? info.requestRate : "inf",
    burstiness: info.burstiness,
    max_concurrency: info.maxConcurrency,
    workload: info.workload,
    duration,
    completed: m.completed,
    failed: m.failed,
    total_input_tokens: m.totalInput,
    total_output_tokens: m.totalOutput,
    request_throughput: m.requestThroughput,
    request_goodput: options.goodput ? m.requestGoodput : null,
    output_throughput: m.outputThroughput,
    total_token_throughput: m.totalTokenThroughput,
  };
  if (options.detailed) {
    out.input_lens = outputs.map((o) => o.promptLen);
    out.output_lens = m.outputLens;
    out.ttfts = outputs.map((o) => o.ttft);
    out.itls = outputs.map((o) => o.itl);
    out.generated_texts = outputs.map((o) => o.generatedText);
    out.errors = outputs.map((o) => o.error);
  }
  out.max_output_tokens_per_s = m.maxOutputTokensPerS;
  out.max_concurrent_requests = m.maxConcurrentRequests;
  Object.assign(out, metricFields(m, options.selected, options.percentiles));
  return out;
}

const HEADERS: Record<string, [string, string]> = {
  ttft: ["TTFT", "Time to First Token"],
  tpot: ["TPOT", "Time per Output Token (excl. 1st token)"],
  itl: ["ITL", "Inter-token Latency"],
  e2el: ["E2EL", "End-to-end Latency"],
};

/** The terminal table, laid out as vLLM prints it. */
export function resultTable(
  info: RunInfo,
  m: BenchmarkMetrics,
  duration: number,
  options: { selected: string[]; percentiles: number[]; goodput: boolean },
): string {
  const row = (k: string, v: string | number) =>
    `${k.padEnd(40)} ${typeof v === "number" && !Number.isInteger(v) ? v.toFixed(2) : String(v)}`;
  const center = (s: string, c: string) => {
    const left = Math.floor((50 - s.length) / 2);
    return c.repeat(Math.max(0, left)) + s + c.repeat(Math.max(0, 50 - s.length - left));
  };
  const lines = [center(" Serving Benchmark Result ", "=")];
  lines.push(row("Successful requests:", m.completed), row("Failed requests:", m.failed));
  if (info.maxConcurrency !== null) {
    lines.push(row("Maximum request concurrency:", info.maxConcurrency));
  }
  if (Number.isFinite(info.requestRate)) {
    lines.push(row("Request rate configured (RPS):", info.requestRate.toFixed(2)));
  }
  lines.push(
    row("Benchmark duration (s):", duration.toFixed(2)),
    row("Total input tokens:", m.totalInput),
    row("Total generated tokens:", m.totalOutput),
    row("Request throughput (req/s):", m.requestThroughput.toFixed(2)),
  );
  if (options.goodput) lines.push(row("Request goodput (req/s):", m.requestGoodput.toFixed(2)));
  lines.push(
    row("Output token throughput (tok/s):", m.outputThroughput.toFixed(2)),
    row("Peak output token throughput (tok/s):", m.maxOutputTokensPerS.toFixed(2)),
    row("Peak concurrent requests:", m.maxConcurrentRequests.toFixed(2)),
    row("Total Token throughput (tok/s):", m.totalTokenThroughput.toFixed(2)),
  );
  for (const name of ["ttft", "tpot", "itl", "e2el"]) {
    if (!options.selected.includes(name)) continue;
    const [short, title] = HEADERS[name];
    const v = m.samples[name as keyof BenchmarkMetrics["samples"]];
    lines.push(center(title, "-"));
    lines.push(row(`Mean ${short} (ms):`, (mean(v) * 1000).toFixed(2)));
    lines.push(row(`Median ${short} (ms):`, (percentile(v, 50) * 1000).toFixed(2)));
    for (const p of options.percentiles) {
      lines.push(row(`P${p} ${short} (ms):`, (percentile(v, p) * 1000).toFixed(2)));
    }
  }
  lines.push("=".repeat(50));
  return lines.join("\n");
}
