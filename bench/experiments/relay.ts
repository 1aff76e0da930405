/**
 * RelayAttention in simulation (the paper's setting): Llama-2-7B on one A100, a chatbot
 * workload (ShareGPT lengths) behind one long shared system prompt, Poisson arrivals. The
 * sustainable request rate — the highest rate whose P99 time-between-tokens stays under
 * the SLO with a median scheduling delay of at most 2 s — with the `relay` kvcache plugin
 * (the shared prompt's KV read once per step) against `lru-prefix` (the prompt's blocks
 * shared, but read once per request). Paper: up to 2.2x the request rate, 2.0x throughput.
 *
 * `deno run -A bench/experiments/relay.ts [--requests N] [--system-prompt TOKENS] [--slo S]`
 *
 * @module
 */

import { type SimRequest, simulate } from "../../core/simulation.ts";
import { generateWorkload } from "../workloads/generate.ts";
import { deployment, fmt, markdownTable, type Plugins, tbtCapacity } from "./common.ts";

const MAX_LEN = 4096;

function flag(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}

function workload(requests: number, rate: number, system: number): SimRequest[] {
  return generateWorkload({
    workload: "sharegpt",
    requests,
    seed: 1,
    arrival: { kind: "poisson", rate },
    maxModelLen: MAX_LEN - system,
  }).map((q) => ({ ...q, promptLength: q.promptLength + system, sharedPrefix: system }));
}

/** Run the capacity searches and print the table. */
export async function main(args: string[]): Promise<void> {
  const requests = flag(args, "--requests", 600);
  const system = flag(args, "--system-prompt", 2048);
  const slo = flag(args, "--slo", 0.2);
  const sets: [string, Plugins][] = [
    ["relay", { kvcache: { name: "relay", options: { minPrefix: 256 } } }],
    ["lru-prefix (ordinary paged attention)", { kvcache: { name: "lru-prefix" } }],
  ];
  const rows: (string | number)[][] = [];
  const found: number[] = [];
  for (const [label, plugins] of sets) {
    const engine = deployment({
      model: "llama-2-7b",
      gpu: "a100-80g",
      plugins,
      maxModelLen: MAX_LEN,
    });
    const t0 = performance.now();
    const { capacity } = await tbtCapacity(engine, (rate) => workload(requests, rate, system), slo);
    const at = await simulate({ engine, requests: workload(requests, capacity, system) });
    found.push(capacity);
    rows.push([
      label,
      fmt(capacity),
      fmt(at.summary.output_throughput, 0),
      fmt(at.summary.itl_ms.percentiles.p99 ?? NaN, 1),
      `${((performance.now() - t0) / 1000).toFixed(1)} s`,
    ]);
  }
  console.log(
    `RelayAttention, Llama-2-7B on A100-80GB, ShareGPT behind a ${system}-token system prompt, ` +
      `${requests} requests, P99 TBT <= ${slo} s and P50 scheduling delay <= 2 s\n`,
  );
  console.log(
    markdownTable([
      "kvcache",
      "capacity (req/s)",
      "output tok/s at capacity",
      "P99 TBT (ms)",
      "wall",
    ], rows),
  );
  console.log(
    `\nrelay / ordinary: ${
      (found[0] / found[1]).toFixed(2)
    }x the sustainable rate (paper: up to 2.2x)`,
  );
}

if (import.meta.main) await main(Deno.args);
