/**
 * Reports of a simulation: the terminal summary (vLLM's benchmark layout plus the
 * papers' metrics), the deterministic JSON document and the SVG charts.
 *
 * @module
 */

import type { SimulationResult } from "../../core/simulation.ts";
import { e2el, succeeded, ttft } from "../../core/metrics/request_metrics.ts";
import type { Distribution } from "../../core/metrics/stats.ts";
import { cdfPoints, lineChart, type Series } from "./svg.ts";
import { fmt } from "./table.ts";

/** A named simulation result (one policy set, one rate). */
export interface LabelledResult {
  /** Label in tables and legends. */
  label: string;
  /** The result. */
  result: SimulationResult;
}

function distLines(name: string, d: Distribution): string[] {
  const out = [
    `${("Mean " + name + ":").padEnd(36)}${fmt(d.mean)}`,
    `${("Median " + name + ":").padEnd(36)}${fmt(d.median)}`,
  ];
  for (const [k, v] of Object.entries(d.percentiles)) {
    if (k !== "p50") out.push(`${(k.toUpperCase() + " " + name + ":").padEnd(36)}${fmt(v)}`);
  }
  return out;
}

/** The terminal summary of one run, in `vllm bench serve`'s layout. */
export function summaryText(r: SimulationResult, title = "Simulation Result"): string {
  const s = r.summary;
  const line = (k: string, v: number | string) =>
    `${(k + ":").padEnd(36)}${typeof v === "number" ? fmt(v) : v}`;
  const out = [
    `${"=".repeat(17)} ${title} ${"=".repeat(Math.max(0, 32 - title.length))}`,
    line("Successful requests", s.completed),
    line("Failed requests", s.failed),
    line("Benchmark duration (s)", s.duration_s),
    line("Total input tokens", s.total_input_tokens),
    line("Total generated tokens", s.total_output_tokens),
    line("Request throughput (req/s)", s.request_throughput),
    line("Output token throughput (tok/s)", s.output_throughput),
    line("Total token throughput (tok/s)", s.total_token_throughput),
  ];
  if (s.request_goodput !== undefined) {
    out.push(line("Request goodput (req/s)", s.request_goodput));
    out.push(line("Token goodput (tok/s)", s.token_goodput!));
    out.push(line("SLO attainment", s.slo_attainment!));
  }
  const section = (t: string) =>
    out.push(`${"-".repeat(15)}${t}${"-".repeat(Math.max(0, 35 - t.length))}`);
  section("Time to First Token");
  out.push(...distLines("TTFT (ms)", s.ttft_ms));
  section("Time per Output Token (excl. 1st token)");
  out.push(...distLines("TPOT (ms)", s.tpot_ms));
  section("Inter-token Latency");
  out.push(...distLines("ITL (ms)", s.itl_ms));
  section("End-to-end Latency");
  out.push(...distLines("E2EL (ms)", s.e2el_ms));
  section("Scheduling");
  out.push(...distLines("sched delay (ms)", s.scheduling_delay_ms));
  out.push(...distLines("max-TPOT (ms)", s.max_tpot_ms));
  out.push(line("Mean latency per token (ms)", s.mean_latency_per_token_ms));
  out.push(line("Mean max waiting (ms)", s.mean_max_waiting_ms));
  section("Engine");
  const e = r.engine;
  out.push(line("Steps (fast-forwarded)", `${e.steps} (${e.fastForwardedSteps})`));
  out.push(line("Mean step time (ms)", e.meanStepTime * 1000));
  out.push(line("Preemptions", e.preemptions));
  if (e.swapOuts > 0) out.push(line("Swapped out (of them)", e.swapOuts));
  out.push(line("Preempted requests", s.preempted_requests));
  out.push(line("Recomputed tokens", e.recomputedTokens));
  out.push(line("Evicted cached blocks", e.evictions));
  out.push(line("Prefix-cache hit tokens", e.prefixHitTokens));
  if (e.draftTokens > 0) {
    const rate = e.acceptedDraftTokens / e.draftTokens;
    out.push(
      line("Draft tokens accepted / verified", `${e.acceptedDraftTokens} / ${e.draftTokens}`),
    );
    out.push(line("Draft acceptance", rate));
  }
  if (e.hostStores > 0) {
    out.push(line("Host KV cache: stored / hit tokens", `${e.hostStores} / ${e.hostHitTokens}`));
  }
  out.push(line("KV blocks", `${e.numBlocks} x ${e.blockSize} tokens`));
  out.push(line("KV usage mean / peak", `${fmt(e.meanKvUsage, 3)} / ${fmt(e.peakKvUsage, 3)}`));
  if (r.gaveUp > 0) out.push(line("Requests given up (SLA)", r.gaveUp));
  const p = r.programs;
  if (p) {
    section("Programs (multi-turn)");
    out.push(line("Programs completed / seen", `${p.completed} / ${p.programs}`));
    out.push(line("Mean turns per program", p.mean_turns));
    out.push(line("Program throughput (prog/s)", p.program_throughput));
    out.push(...distLines("JCT (s)", p.jct_s));
  }
  section("Decision time (wall clock)");
  for (const [slot, d] of Object.entries(r.decisionTime)) {
    const per = d.steps > 0 ? d.totalSeconds / d.steps * 1e6 : 0;
    out.push(line(`${slot} mean / max (us)`, `${fmt(per, 1)} / ${fmt(d.maxSeconds * 1e6, 1)}`));
  }
  out.push("=".repeat(50));
  return out.join("\n");
}

/** The deterministic part of a result, as a plain object for JSON (no wall-clock values). */
export function resultJson(r: SimulationResult): Record<string, unknown> {
  return {
    summary: r.summary,
    ...(r.programs ? { programs: r.programs } : {}),
    engine: r.engine,
    gaveUp: r.gaveUp,
    kvUsage: r.kvUsage,
  };
}

/** Charts of one or more runs: TTFT CDF, E2EL CDF, KV usage over time. */
export function charts(runs: readonly LabelledResult[]): Record<string, string> {
  const ok = (r: SimulationResult) => r.records.filter(succeeded);
  const ttftS: Series[] = runs.map((x) => ({
    label: x.label,
    points: cdfPoints(ok(x.result).map((r) => ttft(r))),
  }));
  const e2elS: Series[] = runs.map((x) => ({
    label: x.label,
    points: cdfPoints(ok(x.result).map((r) => e2el(r))),
  }));
  const kvS: Series[] = runs.map((x) => ({ label: x.label, points: x.result.kvUsage }));
  return {
    "ttft_cdf.svg": lineChart(ttftS, {
      title: "TTFT CDF",
      xLabel: "TTFT (s)",
      yLabel: "fraction of requests",
    }),
    "e2el_cdf.svg": lineChart(e2elS, {
      title: "End-to-end latency CDF",
      xLabel: "E2EL (s)",
      yLabel: "fraction of requests",
    }),
    "kv_usage.svg": lineChart(kvS, {
      title: "KV cache usage",
      xLabel: "simulated time (s)",
      yLabel: "fraction of blocks used",
    }),
  };
}

/** Write JSON (2-space, trailing newline) and charts into `dir`. */
export async function writeOutputs(
  dir: string,
  json: Record<string, unknown>,
  svgs: Record<string, string>,
  jsonName = "result.json",
): Promise<string[]> {
  await Deno.mkdir(dir, { recursive: true });
  const files = [`${dir}/${jsonName}`];
  await Deno.writeTextFile(files[0], JSON.stringify(json, null, 2) + "\n");
  for (const [name, svg] of Object.entries(svgs)) {
    await Deno.writeTextFile(`${dir}/${name}`, svg);
    files.push(`${dir}/${name}`);
  }
  return files;
}
