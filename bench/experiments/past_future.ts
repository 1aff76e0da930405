/**
 * Past-Future goodput (ASPLOS'25, Llama-2-7B, 120,000 tokens of KV): closed-loop clients
 * (each sends a request, waits for the answer, sends the next; a request that misses
 * the SLA of TTFT <= 10 s and max-TPOT <= 1.5 s, or that the server sheds, goes back to
 * the end of the shared queue, as the artifact's clients re-add failed requests) over
 * ShareGPT-o1 and the uniform Dist-1/2/3, for past-future, watermark ("aggressive"),
 * reserve-max ("conservative") and the oracle. Requests carry the workload's realistic
 * max_tokens cap, never their true length. Batches are built as the artifact's LightLLM
 * router builds them (`lightllm-router`: whole-prompt prefill rounds of at most 18,000
 * tokens, two decode steps between rounds). Paper: 2-3x the goodput of aggressive and
 * conservative under heavy load, near the oracle.
 *
 * `deno run -A bench/experiments/past_future.ts [--clients 10,40,100] [--workloads sharegpt-o1,dist-1] [--requests N] [--retries N|unlimited] [--batcher lightllm-router|sarathi|prefill-first]`
 *
 * @module
 */

import { simulate } from "../../core/simulation.ts";
import type { Engine, StepReport } from "../../core/engine.ts";
import { generateWorkload } from "../workloads/generate.ts";
import { deployment, FAST_FORWARD_SAFE, fmt, markdownTable, type Plugins } from "./common.ts";
import { builtinRegistry } from "../../plugins/builtins.ts";
import { UsageError } from "../../core/errors.ts";

const SLA = { ttft: 10_000, maxTpot: 1_500 };
const MAX_LEN = 18_000;

/**
 * Batchers the driver can run. `lightllm-router` is the artifact server's (LightLLM,
 * unchunked prefill rounds every 2 decode steps, `batch_max_tokens` 18,000, 1,000
 * running); `sarathi` (2,048-token chunks, decodes never pause) and `prefill-first`
 * (vLLM v0: back-to-back prefill steps whenever a prompt fits) for comparison.
 */
export const BATCHERS: Readonly<Record<string, Plugins["batcher"]>> = {
  "lightllm-router": {
    name: "lightllm-router",
    options: { batchMaxTokens: MAX_LEN, maxWaitTokens: 2, maxNumSeqs: 1000 },
  },
  "sarathi": { name: "sarathi", options: { tokenBudget: 2048, maxNumSeqs: 1000 } },
  "prefill-first": {
    name: "prefill-first",
    options: { maxNumBatchedTokens: MAX_LEN, maxNumSeqs: 1000 },
  },
};

/** The admission policies compared; the aggressive server never drops stalled requests. */
export const ADMISSIONS: [string, Plugins["admission"], boolean][] = [
  ["past-future", { name: "past-future" }, true],
  // The artifact server's parameters: a 40-request window and a 6,000-token prior.
  ["past-future (artifact: window 40, prior 6,000)", {
    name: "past-future",
    options: { window: 40, initialLength: 6000 },
  }, true],
  ["aggressive (watermark)", { name: "watermark" }, false],
  // The artifact's conservative server reserves a fixed 12,000-token output budget.
  [
    "conservative (reserve-max, 12,000)",
    { name: "reserve-max", options: { outputBudget: 12_000 } },
    true,
  ],
  ["conservative (reserve-max, request cap)", { name: "reserve-max" }, true],
  ["oracle", { name: "oracle" }, true],
];

/**
 * The artifact server's SLA shedding (spec, section 2.5): drop a request still waiting
 * for its first token after 8 s, and (unless disabled) one that has had no token for
 * 1.49 s, evicted ones included. Returns an `onStep` hook for the simulation.
 */
function shedding(dropStalled: boolean): (rep: StepReport, engine: Engine) => void {
  const last = new Map<string, [number, number]>(); // id -> [tokens seen, time of the last]
  return (_rep, engine) => {
    const now = engine.clock.now();
    const drop: string[] = [];
    for (const r of engine.running) {
      const n = r.outputTokens.length;
      const seen = last.get(r.id);
      if (!seen || seen[0] !== n) last.set(r.id, [n, now]);
      else if (dropStalled && n > 0 && now - seen[1] > 1.49) drop.push(r.id);
    }
    for (const r of engine.waiting) {
      const n = r.outputTokens.length;
      if (n === 0 && now - r.arrivalTime > 8) drop.push(r.id);
      else if (n > 0 && dropStalled) {
        const seen = last.get(r.id);
        if (seen && now - seen[1] > 1.49) drop.push(r.id);
      }
    }
    for (const id of drop) {
      engine.abort(id);
      last.delete(id);
    }
  };
}

/** One run: token goodput and engine counters. */
export async function goodput(
  workload: string,
  clients: number,
  admission: Plugins["admission"],
  o: { requests: number; retries: number; dropStalled: boolean; batcher?: string },
): Promise<{ goodput: number; attainment: number; preemptions: number; dropped: number }> {
  const batcher = BATCHERS[o.batcher ?? "lightllm-router"];
  if (!batcher) {
    throw new UsageError(
      `unknown --batcher ${o.batcher}; allowed: ${Object.keys(BATCHERS).join(", ")}`,
      "batcher",
    );
  }
  const engine = {
    ...deployment({
      model: "llama-2-7b",
      gpu: "a100-80g",
      kvTokens: 120_000,
      maxModelLen: MAX_LEN,
      // fcfs evicts the newest request first, as the router's pause does.
      plugins: { admission, batcher },
    }),
    registry: builtinRegistry(),
  };
  const requests = generateWorkload({
    workload,
    requests: o.requests,
    seed: 1,
    maxModelLen: MAX_LEN,
  });
  const r = await simulate({
    engine,
    requests,
    load: { kind: "closed", clients, retries: o.retries, sla: SLA },
    slo: SLA,
    fastForwardSafe: FAST_FORWARD_SAFE,
    onStep: shedding(o.dropStalled),
  });
  return {
    goodput: r.summary.token_goodput ?? 0,
    attainment: r.summary.slo_attainment ?? 0,
    preemptions: r.engine.preemptions,
    dropped: r.summary.failed,
  };
}

function arg(args: string[], name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
}

/** Run the sweep and print one table per workload. */
export async function main(args: string[]): Promise<void> {
  const clientsList = arg(args, "clients", "10,20,40,60,80,100").split(",").map(Number);
  if (!clientsList.every((c) => Number.isInteger(c) && c >= 1)) {
    throw new UsageError(
      `--clients must be integers >= 1, comma-separated; got ${arg(args, "clients", "")}`,
      "clients",
    );
  }
  const workloads = arg(args, "workloads", "sharegpt-o1,dist-1,dist-2,dist-3").split(",");
  const retriesArg = arg(args, "retries", "unlimited");
  const retries = retriesArg === "unlimited" ? Infinity : Number(retriesArg);
  if (!(retries >= 0)) {
    throw new UsageError(
      `--retries must be a number >= 0 or unlimited, got ${retriesArg}`,
      "retries",
    );
  }
  const batcher = arg(args, "batcher", "lightllm-router");
  for (const workload of workloads) {
    // The artifact's prompt counts: 1,900 of ShareGPT-o1, 500 of each Dist-x.
    const requests = Number(arg(args, "requests", workload === "sharegpt-o1" ? "1900" : "500"));
    if (!(Number.isInteger(requests) && requests >= 1)) {
      throw new UsageError(`--requests must be an integer >= 1, got ${arg(args, "requests", "")}`);
    }
    const rows: (string | number)[][] = [];
    for (const clients of clientsList) {
      const res: Record<string, Awaited<ReturnType<typeof goodput>>> = {};
      for (const [label, admission, dropStalled] of ADMISSIONS) {
        const t0 = performance.now();
        res[label] = await goodput(workload, clients, admission, {
          requests,
          retries,
          dropStalled,
          batcher,
        });
        console.error(
          `${workload} ${clients} clients ${label}: goodput ${
            res[label].goodput.toFixed(0)
          } tok/s, attainment ${fmt(res[label].attainment)}, preemptions ${
            res[label].preemptions
          }, dropped ${res[label].dropped} (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
        );
      }
      const pf = res["past-future"].goodput;
      const best = Math.max(
        res["aggressive (watermark)"].goodput,
        res["conservative (reserve-max, 12,000)"].goodput,
      );
      rows.push([
        clients,
        ...ADMISSIONS.map(([l]) =>
          `${fmt(res[l].goodput, 0)} (${fmt(res[l].attainment * 100, 0)} %, ${
            res[l].preemptions
          } pre.)`
        ),
        best > 0 ? fmt(pf / best, 2) + "x" : "-",
        fmt(pf / Math.max(best, res["conservative (reserve-max, request cap)"].goodput), 2) + "x",
        res.oracle.goodput > 0 ? fmt(pf / res.oracle.goodput, 2) : "-",
      ]);
    }
    console.log(
      `\n${workload} (${requests} requests, ${retriesArg} retries, ${batcher}): token goodput, tok/s (SLA attainment, preemptions)\n`,
    );
    console.log(
      markdownTable([
        "clients",
        ...ADMISSIONS.map(([l]) => l),
        "past-future / best of aggressive and conservative",
        "past-future / best of all three baselines",
        "past-future / oracle",
      ], rows),
    );
  }
}

if (import.meta.main) await main(Deno.args);
