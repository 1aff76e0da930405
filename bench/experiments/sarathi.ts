/**
 * Sarathi-Serve capacity (OSDI'24, Mistral-7B on one A100): the highest Poisson rate of
 * ShareGPT requests whose P99 time-between-tokens (preemption stalls included) meets the
 * SLO and whose median scheduling delay is at most 2 s, under a strict (0.1 s) and a
 * relaxed (0.5 s) SLO, for sarathi (budget 512 / 2048, and the budget picked from the
 * cost model), vLLM v0 (`prefill-first`, batch 128) and Orca (batch 16). Paper: 2.6x
 * vLLM's capacity.
 *
 * `deno run -A bench/experiments/sarathi.ts [--requests N]`
 *
 * @module
 */

import { generateWorkload } from "../workloads/generate.ts";
import {
  deployment,
  FAST_FORWARD_SAFE,
  fmt,
  markdownTable,
  type Plugins,
  tbtCapacity,
} from "./common.ts";

const MAX_LEN = 8192;

function capacity(
  plugins: Plugins,
  slo: number,
  requests: number,
): Promise<{ capacity: number; probes: number }> {
  const engine = deployment({
    model: "mistral-7b",
    gpu: "a100-pcie-80g",
    plugins,
    maxModelLen: MAX_LEN,
  });
  const workloadAt = (rate: number) =>
    generateWorkload({
      workload: "sharegpt",
      requests,
      seed: 1,
      arrival: { kind: "poisson", rate },
      maxModelLen: MAX_LEN,
    });
  return tbtCapacity(engine, workloadAt, slo, FAST_FORWARD_SAFE);
}

/** Run the capacity searches and print the table. */
export async function main(args: string[]): Promise<void> {
  const i = args.indexOf("--requests");
  const requests = i >= 0 ? Number(args[i + 1]) : 1024;
  const rows: (string | number)[][] = [];
  for (const [label, slo, budget] of [["strict", 0.1, 512], ["relaxed", 0.5, 2048]] as const) {
    const sets: [string, Plugins][] = [
      [`sarathi (budget ${budget})`, {
        batcher: { name: "sarathi", options: { tokenBudget: budget, maxNumSeqs: 128 } },
      }],
      ["sarathi (budget auto)", {
        batcher: {
          name: "sarathi",
          options: { tokenBudget: "auto", tbtSlo: slo, maxNumSeqs: 128 },
        },
      }],
      ["vLLM v0 (prefill-first, batch 128)", {
        batcher: {
          name: "prefill-first",
          options: { maxNumSeqs: 128, maxNumBatchedTokens: MAX_LEN },
        },
      }],
      ["Orca (batch 16)", { batcher: { name: "orca", options: { maxNumSeqs: 16 } } }],
    ];
    let vllm = 0;
    const results: [string, number, number][] = [];
    for (const [name, plugins] of sets) {
      const t0 = performance.now();
      const c = await capacity(plugins, slo, requests);
      console.error(
        `${label} ${name}: capacity ${c.capacity.toFixed(3)} req/s (${c.probes} probes, ${
          ((performance.now() - t0) / 1000).toFixed(0)
        } s)`,
      );
      if (name.startsWith("vLLM")) vllm = c.capacity;
      results.push([name, c.capacity, c.probes]);
    }
    for (const [name, cap] of results) {
      rows.push([
        `${label} (P99 TBT <= ${slo} s)`,
        name,
        fmt(cap, 3),
        vllm > 0 ? fmt(cap / vllm, 2) + "x" : "-",
      ]);
    }
  }
  console.log(markdownTable(["SLO", "policy", "capacity (req/s)", "vs vLLM v0"], rows));
}

if (import.meta.main) await main(Deno.args);
