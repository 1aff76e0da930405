/**
 * SmartSpec in simulation (spec section 2(d), "Qualitative reproduction"): Llama-2-7B on
 * one A100-80GB, ShareGPT lengths, Poisson arrivals from light load to saturation, a draft
 * model whose tokens are accepted with probability alpha and whose pass costs a tenth of
 * the target's decode step. Mean request latency without speculation, with a fixed draft
 * length, and with SmartSpec's goodput-driven length. Paper: up to 3.2x lower average
 * latency than no speculation, never worse than it; fixed lengths lose at high load or
 * low acceptance.
 *
 * `deno task bench experiments/smartspec [--requests N] [--rates 1,2,4,8] [--alphas 0.5,0.7]`
 *
 * @module
 */

import { parseArgs } from "node:util";
import { simulate } from "../../core/simulation.ts";
import { generateWorkload } from "../workloads/generate.ts";
import { deployment, fmt, markdownTable } from "./common.ts";

const MAX_LEN = 4096;

/** Run every configuration at every rate and acceptance, and print the tables. */
export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      requests: { type: "string", default: "600" },
      rates: { type: "string", default: "1,2,4,8,12" },
      alphas: { type: "string", default: "0.5,0.7,0.85" },
      "draft-cost": { type: "string", default: "0.1" },
      model: { type: "string", default: "llama-2-7b" },
    },
  });
  const rates = values.rates.split(",").map(Number);
  const draftCost = Number(values["draft-cost"]);
  for (const alpha of values.alphas.split(",").map(Number)) {
    const configs: [string, { name: string; options?: Record<string, unknown> }][] = [
      ["none", { name: "none" }],
      ...[1, 3, 5].map((k): [string, { name: string; options: Record<string, unknown> }] => [
        `k = ${k}`,
        { name: "sim-draft", options: { k, acceptance: alpha, draftCost } },
      ]),
      ["smartspec", { name: "smartspec", options: { acceptance: alpha, draftCost } }],
    ];
    const rows: (string | number)[][] = [];
    for (const rate of rates) {
      const requests = generateWorkload({
        workload: "sharegpt",
        requests: Number(values.requests),
        seed: 1,
        arrival: { kind: "poisson", rate },
        maxModelLen: MAX_LEN,
      });
      const latency: number[] = [];
      let acceptance = "";
      for (const [, speculation] of configs) {
        const engine = deployment({
          model: values.model,
          gpu: "a100-80g",
          maxModelLen: MAX_LEN,
          plugins: { speculation },
        });
        const r = await simulate({ engine, requests });
        latency.push(r.summary.e2el_ms.mean / 1000);
        if (speculation.name === "smartspec" && r.engine.draftTokens > 0) {
          acceptance = fmt(r.engine.acceptedDraftTokens / r.engine.draftTokens);
        }
      }
      const best = Math.min(...latency.slice(1, -1));
      rows.push([
        rate,
        ...latency.map((x) => fmt(x, 1)),
        fmt(latency[0] / latency.at(-1)!),
        fmt(best / latency.at(-1)!),
        acceptance || "-",
      ]);
      console.error(`alpha ${alpha} rate ${rate}: ${latency.map((x) => fmt(x, 1)).join(" ")}`);
    }
    console.log(`\nalpha ${alpha}, draft pass ${draftCost} of a decode step; mean latency, s\n`);
    console.log(markdownTable([
      "req/s",
      ...configs.map(([label]) => label),
      "none / smartspec",
      "best fixed / smartspec",
      "smartspec drafts accepted",
    ], rows));
  }
}

if (import.meta.main) await main(Deno.args);
