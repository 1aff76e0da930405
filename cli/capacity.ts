/**
 * `main.ts capacity --slo-p99-tbt 0.1 --max-p50-sched-delay 2`: the highest Poisson rate
 * whose P99 time-between-tokens (preemption stalls included) and median scheduling delay
 * meet the limits, by binary search as in the Sarathi-Serve artifact (doubling from a
 * start rate, then bisection down to a relative granularity).
 *
 * @module
 */

import { UsageError } from "../core/errors.ts";
import type { SimulationResult } from "../core/simulation.ts";
import { flagsHelp } from "./flags.ts";
import { buildSimSetup, parseSimCommand, runSetup, SIM_FLAGS } from "./simulate.ts";
import { table } from "../bench/report/table.ts";
import { lineChart } from "../bench/report/svg.ts";
import { writeOutputs } from "../bench/report/sim_report.ts";

const FLAGS = {
  "slo-p99-tbt": {
    type: "number" as const,
    description: "limit on P99 TBT, seconds",
    required: true,
    min: 1e-6,
  },
  "max-p50-sched-delay": {
    type: "number" as const,
    description: "limit on median scheduling delay, seconds",
    default: 2,
    min: 0,
  },
  "start-rate": {
    type: "number" as const,
    description: "first rate tried, requests/s",
    default: 2,
    min: 1e-3,
    max: 1e5,
  },
  granularity: {
    type: "number" as const,
    description: "stop when the bracket is this fraction of the rate",
    default: 0.025,
    min: 1e-4,
    max: 0.5,
  },
  "max-probes": {
    type: "int" as const,
    description: "most simulations run",
    default: 16,
    min: 2,
    max: 100,
  },
  out: {
    type: "string" as const,
    description: "directory for capacity.json and a latency-vs-load chart",
  },
};

/** One probe of the search. */
export interface Probe {
  /** Poisson rate, requests/s. */
  rate: number;
  /** P99 TBT, seconds. */
  p99Tbt: number;
  /** Median scheduling delay, seconds. */
  p50SchedDelay: number;
  /** Whether both limits held. */
  ok: boolean;
}

/** Binary search of the highest passing rate; `probe` runs one simulation. */
export async function searchCapacity(
  probe: (rate: number) => Promise<Probe>,
  o: { start: number; granularity: number; maxProbes: number },
): Promise<{ capacity: number; probes: Probe[] }> {
  const probes: Probe[] = [];
  const run = async (r: number) => {
    const p = await probe(r);
    probes.push(p);
    return p.ok;
  };
  let lo = 0, hi = o.start;
  // Grow until a rate fails (or shrink the bracket's top until the first probe passes).
  while (probes.length < o.maxProbes && await run(hi)) {
    lo = hi;
    hi *= 2;
  }
  while (probes.length < o.maxProbes && hi - lo > o.granularity * hi) {
    const mid = lo > 0 ? (lo + hi) / 2 : hi / 2;
    if (await run(mid)) lo = mid;
    else hi = mid;
    if (lo === 0 && hi < o.start * 1e-3) break; // nothing passes
  }
  return { capacity: lo, probes };
}

function measure(rate: number, r: SimulationResult, tbt: number, delay: number): Probe {
  const p99Tbt = (r.summary.itl_ms.percentiles.p99 ?? 0) / 1000;
  const p50SchedDelay = r.summary.scheduling_delay_ms.median / 1000;
  const ok = r.summary.failed === 0 && p99Tbt <= tbt && p50SchedDelay <= delay;
  return { rate, p99Tbt, p50SchedDelay, ok };
}

/** Help text. */
export function help(): string {
  return [
    "Usage: deno run -A main.ts capacity --slo-p99-tbt SECONDS [--max-p50-sched-delay SECONDS] [simulate flags]",
    "",
    ...flagsHelp(FLAGS),
    ...flagsHelp(SIM_FLAGS),
  ].join("\n");
}

/** `capacity` command. */
export async function main(args: string[]): Promise<number> {
  const cmd = await parseSimCommand(args, FLAGS);
  const v = cmd.values;
  if (v.arrival !== undefined && v.arrival !== "poisson") {
    throw new UsageError(
      "capacity searches Poisson rates: leave --arrival out or set it to poisson",
      "--arrival",
    );
  }
  const setup = await buildSimSetup(cmd);
  const tbt = v["slo-p99-tbt"] as number;
  const delay = v["max-p50-sched-delay"] as number;
  const { capacity, probes } = await searchCapacity(async (rate) => {
    const result = await runSetup(setup, `rate ${rate.toFixed(3)}`, setup.atRate(rate));
    const p = measure(rate, result, tbt, delay);
    console.error(
      `rate ${rate.toFixed(3)}: p99 TBT ${p.p99Tbt.toFixed(3)} s, p50 sched delay ${
        p.p50SchedDelay.toFixed(3)
      } s -> ${p.ok ? "ok" : "over"}`,
    );
    return p;
  }, {
    start: v["start-rate"] as number,
    granularity: v.granularity as number,
    maxProbes: v["max-probes"] as number,
  });
  const sorted = probes.slice().sort((a, b) => a.rate - b.rate);
  console.log(table(
    ["rate (req/s)", "p99 TBT (s)", "p50 sched delay (s)", "meets SLO"],
    sorted.map((p) => [p.rate, p.p99Tbt, p.p50SchedDelay, p.ok ? "yes" : "no"]),
  ));
  console.log(
    `capacity: ${
      capacity.toFixed(3)
    } requests/s (P99 TBT <= ${tbt} s, P50 scheduling delay <= ${delay} s)`,
  );
  const out = v.out as string | undefined;
  if (out) {
    const chart = lineChart([
      { label: "p99 TBT (s)", points: sorted.map((p) => [p.rate, p.p99Tbt]) },
      { label: "p50 sched delay (s)", points: sorted.map((p) => [p.rate, p.p50SchedDelay]) },
    ], { title: "Latency against load", xLabel: "request rate (req/s)", yLabel: "seconds" });
    const files = await writeOutputs(out, {
      config: setup.config,
      slo: { p99Tbt: tbt, p50SchedDelay: delay },
      capacity,
      probes,
    }, {
      "latency_vs_load.svg": chart,
    }, "capacity.json");
    console.log(`wrote ${files.join(", ")}`);
  }
  return 0;
}
