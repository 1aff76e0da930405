/**
 * `main.ts compare --policies a.json,b.json ...`: run several policy sets on the same
 * trace in one run and print their metrics side by side; `--out DIR` writes
 * `compare.json` and overlaid SVG charts.
 *
 * A policy file has the `--config` format: slot keys (`"batcher": "vllm"` or
 * `{ "name": ..., "options": {...} }`) and optional engine keys (blockSize, numBlocks,
 * maxBatchTokens, maxBatchSeqs, seed).
 *
 * @module
 */

import { UsageError } from "../core/errors.ts";
import type { SlotChoice } from "../core/engine.ts";
import type { SimulationResult } from "../core/simulation.ts";
import { policyChoices, readConfigFile } from "./engine_flags.ts";
import { flagsHelp } from "./flags.ts";
import { buildSimSetup, parseSimCommand, runSetup, SIM_FLAGS } from "./simulate.ts";
import { type Cell, table } from "../bench/report/table.ts";
import {
  charts,
  type LabelledResult,
  resultJson,
  writeOutputs,
} from "../bench/report/sim_report.ts";

const FLAGS = {
  policies: {
    type: "list" as const,
    description: "comma-separated policy files (JSON, the --config format)",
    required: true,
  },
  out: { type: "string" as const, description: "directory for compare.json and SVG charts" },
};

/** The side-by-side metric rows of a comparison. */
export function comparisonRows(runs: readonly LabelledResult[]): Cell[][] {
  const pick: [string, (r: SimulationResult) => number][] = [
    ["completed", (r) => r.summary.completed],
    ["req/s", (r) => r.summary.request_throughput],
    ["output tok/s", (r) => r.summary.output_throughput],
    ["mean TTFT ms", (r) => r.summary.ttft_ms.mean],
    ["p99 TTFT ms", (r) => r.summary.ttft_ms.percentiles.p99 ?? 0],
    ["mean TPOT ms", (r) => r.summary.tpot_ms.mean],
    ["p99 TPOT ms", (r) => r.summary.tpot_ms.percentiles.p99 ?? 0],
    ["p99 ITL (TBT) ms", (r) => r.summary.itl_ms.percentiles.p99 ?? 0],
    ["mean E2EL ms", (r) => r.summary.e2el_ms.mean],
    ["p50 sched delay ms", (r) => r.summary.scheduling_delay_ms.median],
    ["p99 max-TPOT ms", (r) => r.summary.max_tpot_ms.percentiles.p99 ?? 0],
    ["preemptions", (r) => r.engine.preemptions],
    ["recomputed tokens", (r) => r.engine.recomputedTokens],
    ["mean KV usage", (r) => r.engine.meanKvUsage],
    ["prefix hit tokens", (r) => r.engine.prefixHitTokens],
  ];
  // Multi-turn workloads: job completion time of the programs.
  if (runs.some((x) => x.result.programs)) {
    pick.push(
      ["programs completed", (r) => r.programs?.completed ?? 0],
      ["mean JCT s", (r) => r.programs?.jct_s.mean ?? NaN],
      ["p99 JCT s", (r) => r.programs?.jct_s.percentiles.p99 ?? NaN],
    );
  }
  return pick.map(([name, f]) => [name, ...runs.map((x) => f(x.result))]);
}

/** Help text. */
export function help(): string {
  return [
    "Usage: deno run -A main.ts compare --policies a.json,b.json [simulate flags]",
    "",
    ...flagsHelp(FLAGS),
    ...flagsHelp(SIM_FLAGS),
  ].join("\n");
}

const ENGINE_KEYS = ["blockSize", "numBlocks", "maxBatchTokens", "maxBatchSeqs", "seed"] as const;

/** `compare` command. */
export async function main(args: string[]): Promise<number> {
  const cmd = await parseSimCommand(args, FLAGS);
  const setup = await buildSimSetup(cmd);
  const files = cmd.values.policies as string[];
  if (files.length === 0) {
    throw new UsageError("--policies needs at least one policy file", "--policies");
  }
  const registry = cmd.setup.registry;
  const runs: LabelledResult[] = [];
  const configs: Record<string, unknown>[] = [];
  for (const file of files) {
    const policy = await readConfigFile(file);
    const choices: Record<string, SlotChoice> = policyChoices(policy, registry);
    if (choices.executor) {
      throw new UsageError(
        `${file}: a policy file may not choose the executor in a simulation`,
        "--policies",
      );
    }
    const engineOverride: Record<string, unknown> = {
      plugins: { ...setup.engine.plugins, ...choices },
    };
    for (const k of ENGINE_KEYS) if (policy[k] !== undefined) engineOverride[k] = policy[k];
    const label = typeof policy.name === "string"
      ? policy.name
      : file.replace(/^.*\//, "").replace(/\.json$/, "");
    const t0 = performance.now();
    const result = await runSetup(setup, label, setup.requests, engineOverride);
    console.error(`${label}: ${((performance.now() - t0) / 1000).toFixed(2)} s wall`);
    runs.push({ label, result });
    configs.push({ label, file, policy: engineOverride });
  }
  console.log(table(["metric", ...runs.map((r) => r.label)], comparisonRows(runs)));
  const out = cmd.values.out as string | undefined;
  if (out) {
    const json = {
      config: setup.config,
      runs: runs.map((r, i) => ({ ...configs[i], ...resultJson(r.result) })),
    };
    const written = await writeOutputs(out, json, charts(runs), "compare.json");
    console.log(`wrote ${written.join(", ")}`);
  }
  return 0;
}
