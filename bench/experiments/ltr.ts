/**
 * Learning to Rank (NeurIPS'24, Llama-3-8B on one A100 40G) on the learnable workload:
 * - chatbot serving: gamma arrivals (CV 1) at 2 to 64 requests/s for 60 s, mean latency
 *   per output token for fcfs, ltr (a ranker trained by train-ranker on other requests of
 *   the same workload), mlfq and the oracle (shortest remaining first);
 * - a burst of 2,000 requests;
 * - synthetic data generation: 10,000 prompts at once, time to 1,000 completions;
 * - predictor quality: ltr with a noisy oracle swept from Kendall tau 0 to 1.
 * Paper: 2.8x lower latency, 6.5x throughput in data generation, tau 0.52 to 0.64.
 *
 * Preemption swaps the KV to host memory, as in the paper's vLLM fork, with 16 GiB of swap
 * space (the low end of the artifact scripts' 16-400 GB); `--swap-gib 0` recomputes instead.
 *
 * `deno run -A bench/experiments/ltr.ts [--rates 2,4,...] [--parts serving,burst,datagen,tau] [--swap-gib N]`
 *
 * @module
 */

import { simulate, type SimulationResult } from "../../core/simulation.ts";
import { UsageError } from "../../core/errors.ts";
import { generateLearnable } from "../workloads/learnable.ts";
import type { ArrivalSpec } from "../workloads/arrivals.ts";
import { kendallTau } from "../../policies/ltr/kendall.ts";
import { noisyOracleScore } from "../../policies/ltr/mod.ts";
import {
  deployment,
  FAST_FORWARD_SAFE,
  fmt,
  markdownTable,
  type Plugins,
  trainRankerFile,
} from "./common.ts";

const MAX_LEN = 8192;
// The fork's chunked-prefill budget and sequence cap, for every scheduler alike.
const BUDGET = { tokenBudget: 768, maxNumSeqs: 256 };
const BATCHER: Plugins["batcher"] = {
  name: "vllm",
  options: { maxNumBatchedTokens: 768, maxNumSeqs: 256 },
};

/** Host swap space in GiB for swap preemption (0: recompute), set by `--swap-gib`. */
let swapGiB = 16;

/** Simulate the learnable workload under `scheduler`. */
async function run(
  scheduler: Plugins["scheduler"],
  o: {
    requests: number;
    arrival?: ArrivalSpec;
    seed?: number;
    maxTime?: number;
    preemption?: "recompute" | "swap";
  },
): Promise<SimulationResult> {
  const engine = deployment({
    model: "llama-3-8b",
    gpu: "a100-80g",
    memoryGiB: 40,
    maxModelLen: MAX_LEN,
    plugins: { scheduler, batcher: BATCHER },
  });
  const requests = generateLearnable({
    requests: o.requests,
    seed: o.seed ?? 7,
    arrival: o.arrival,
  });
  const preemption = o.preemption ?? (swapGiB > 0 ? "swap" : "recompute");
  // Llama-3-8B keeps 128 KiB of f16 KV per token: 2 MiB per 16-token block.
  const swapBlocks = Math.floor(swapGiB * 2 ** 30 / (16 * 131072));
  return await simulate({
    engine: { ...engine, preemption, swapBlocks },
    requests,
    fastForwardSafe: FAST_FORWARD_SAFE,
    maxTime: o.maxTime,
  });
}

function arg(args: string[], name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
}

/** Run the parts asked for and print their tables. */
export async function main(args: string[]): Promise<void> {
  const parts = arg(args, "parts", "serving,burst,datagen,tau").split(",");
  swapGiB = Number(arg(args, "swap-gib", "16"));
  if (!(swapGiB >= 0 && swapGiB <= 4096)) {
    throw new UsageError(`--swap-gib must be a number from 0 to 4096, got ${swapGiB}`, "swap-gib");
  }
  const rates = arg(args, "rates", "2,4,8,16,32,64").split(",").map(Number);
  // The ranker: trained on 10,000 other requests of the workload (its own seed).
  const { ranker, path: rankerPath, dir, ...report } = await trainRankerFile(
    generateLearnable({ requests: 10_000, seed: 1234 }),
  );
  // Tau on the serving workload itself (never trained on).
  const probe = generateLearnable({ requests: 2000, seed: 7 });
  const servingTau = kendallTau(
    probe.map((r) => ranker.score(r.promptTokens)),
    probe.map((r) => -r.outputLength),
  );
  console.log(
    `ranker: ${report.train} training requests, held-out Kendall tau ${
      fmt(report.tau, 3)
    }; tau on the serving requests ${fmt(servingTau, 3)}\n`,
  );

  const schedulers: [string, Plugins["scheduler"], ("recompute" | "swap")?][] = [
    ["fcfs", { name: "fcfs" }],
    ["ltr", { name: "ltr", options: { ranker: rankerPath, ...BUDGET } }],
    ["ltr (no starvation guard)", {
      name: "ltr",
      options: { ranker: rankerPath, starveLimit: 0, ...BUDGET },
    }],
    ...(swapGiB > 0
      ? [[
        "ltr (recompute preemption)",
        { name: "ltr", options: { ranker: rankerPath, ...BUDGET } },
        "recompute",
      ] as [string, Plugins["scheduler"], "recompute"]]
      : []),
    ["mlfq", { name: "mlfq", options: BUDGET }],
    ["oracle (srtf)", { name: "oracle-srtf", options: BUDGET }],
  ];
  const perToken = (r: SimulationResult) => r.summary.mean_latency_per_token_ms / 1000;

  if (parts.includes("serving")) {
    const rows: (string | number)[][] = [];
    for (const rate of rates) {
      const res: Record<string, SimulationResult> = {};
      for (const [label, s, preemption] of schedulers) {
        const t0 = performance.now();
        res[label] = await run(s, {
          requests: Math.round(60 * rate),
          arrival: { kind: "gamma", rate, cv: 1 },
          preemption,
        });
        console.error(
          `rate ${rate} ${label}: ${fmt(perToken(res[label]), 4)} s/token (${
            ((performance.now() - t0) / 1000).toFixed(1)
          } s)`,
        );
      }
      rows.push([
        rate,
        ...schedulers.map(([l]) => fmt(perToken(res[l]), 4)),
        fmt(perToken(res.fcfs) / perToken(res.ltr), 2) + "x",
        ...schedulers.map(([l]) => fmt(res[l].summary.e2el_ms.percentiles.p99 / 1000, 1)),
        fmt(res.ltr.summary.mean_max_waiting_ms / 1000, 2) + " / " +
        fmt(res.fcfs.summary.mean_max_waiting_ms / 1000, 2),
        res.ltr.engine.preemptions,
      ]);
    }
    console.log("Chatbot serving: mean latency per output token (s/token), P99 E2EL (s)\n");
    console.log(markdownTable([
      "rate (req/s)",
      ...schedulers.map(([l]) => `${l} s/tok`),
      "fcfs / ltr",
      ...schedulers.map(([l]) => `${l} P99 E2EL`),
      "max waiting ltr / fcfs (s)",
      "ltr preemptions",
    ], rows));
  }

  if (parts.includes("burst")) {
    const rows: (string | number)[][] = [];
    const res: Record<string, SimulationResult> = {};
    for (const [label, s, preemption] of schedulers) {
      res[label] = await run(s, {
        requests: 2000,
        arrival: { kind: "burst" },
        seed: 8,
        preemption,
      });
      const m = res[label].summary;
      rows.push([
        label,
        fmt(perToken(res[label]), 4),
        fmt(m.ttft_ms.mean / 1000, 1),
        fmt(m.e2el_ms.mean / 1000, 1),
        fmt(m.e2el_ms.percentiles.p99 / 1000, 1),
        fmt(m.duration_s, 0),
      ]);
    }
    console.log("\nBurst of 2,000 requests\n");
    console.log(
      markdownTable([
        "scheduler",
        "s/token",
        "mean TTFT (s)",
        "mean E2EL (s)",
        "P99 E2EL (s)",
        "makespan (s)",
      ], rows),
    );
    console.log(
      `\nfcfs / ltr latency per token: ${fmt(perToken(res.fcfs) / perToken(res.ltr), 2)}x`,
    );
  }

  if (parts.includes("datagen")) {
    const rows: (string | number)[][] = [];
    const thr: Record<string, number> = {};
    for (const [label, s, preemption] of schedulers) {
      const r = await run(s, {
        requests: 10_000,
        arrival: { kind: "burst" },
        seed: 9,
        maxTime: 300,
        preemption,
      });
      const ends = r.records.filter((x) => x.reason === "stop" || x.reason === "length").map((x) =>
        x.finish
      ).sort((a, b) => a - b);
      const t1000 = ends.length >= 1000 ? ends[999] : Infinity;
      thr[label] = 1000 / t1000;
      rows.push([label, fmt(t1000, 1), fmt(thr[label], 2), ends.length]);
    }
    console.log("\nSynthetic data generation: 10,000 prompts at once\n");
    console.log(
      markdownTable([
        "scheduler",
        "time to 1,000 completions (s)",
        "completions/s",
        "completed in 300 s",
      ], rows),
    );
    console.log(`\nltr / fcfs throughput to 1,000 completions: ${fmt(thr.ltr / thr.fcfs, 2)}x`);
  }

  if (parts.includes("tau")) {
    const rate = Number(arg(args, "tau-rate", "32"));
    const reqs = generateLearnable({
      requests: Math.round(60 * rate),
      seed: 7,
      arrival: { kind: "gamma", rate, cv: 1 },
    });
    const rows: (string | number)[][] = [];
    const fcfs = perToken(
      await run({ name: "fcfs" }, {
        requests: reqs.length,
        arrival: { kind: "gamma", rate, cv: 1 },
      }),
    );
    for (const tau of [0, 0.2, 0.4, 0.6, 0.8, 1]) {
      const got = kendallTau(
        reqs.map((r) => noisyOracleScore(r.outputLength, r.id, tau, 0)),
        reqs.map((r) => -r.outputLength),
      );
      const r = await run({ name: "ltr", options: { predictor: "noisy-oracle", tau, ...BUDGET } }, {
        requests: reqs.length,
        arrival: { kind: "gamma", rate, cv: 1 },
      });
      rows.push([fmt(tau, 1), fmt(got, 3), fmt(perToken(r), 4), fmt(fcfs / perToken(r), 2) + "x"]);
    }
    console.log(
      `\nPredictor quality at ${rate} req/s: ltr with a noisy oracle (fcfs: ${
        fmt(fcfs, 4)
      } s/token)\n`,
    );
    console.log(markdownTable(["target tau", "measured tau", "ltr s/token", "fcfs / ltr"], rows));
  }
  await Deno.remove(dir, { recursive: true });
}

if (import.meta.main) await main(Deno.args);
