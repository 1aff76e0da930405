/**
 * Seeded generation of a workload: lengths from a named workload, arrival times from an
 * arrival process, lengths clipped to the model's context, and synthetic prompt ids.
 *
 * @module
 */

import { UsageError } from "../../core/errors.ts";
import { Rng } from "../../kernels/sim/rng.ts";
import { type ArrivalSpec, arrivalTimes } from "./arrivals.ts";
import { workloadSpec } from "./catalog.ts";
import { drawPair } from "./distributions.ts";
import type { WorkloadRequest } from "./types.ts";
import { clipToContext, syntheticPromptTokens } from "../../core/simulation.ts";

/** Options of {@link generateWorkload}. */
export interface GenerateOptions {
  /** Workload name (see catalog.ts). */
  workload: string;
  /** Number of requests, 1..10,000,000. */
  requests: number;
  /** Seed of lengths and arrivals. */
  seed: number;
  /** Arrival process; the workload's default (Poisson at 1/s, or burst) when absent. */
  arrival?: ArrivalSpec;
  /** Longest prompt plus output allowed (the model's context); lengths shrink to fit. */
  maxModelLen?: number;
}

/** Check a request count; UsageError when out of range. */
export function checkCount(n: number, flag = "requests"): void {
  if (!Number.isInteger(n) || n < 1 || n > 1e7) {
    throw new UsageError(`--${flag} must be an integer in [1, 10000000], got ${n}`, flag);
  }
}

/** Generate a seeded workload. */
export function generateWorkload(o: GenerateOptions): WorkloadRequest[] {
  checkCount(o.requests);
  const spec = workloadSpec(o.workload);
  const rng = new Rng(o.seed);
  const lengths = rng.fork(1);
  const arrival: ArrivalSpec = o.arrival ??
    (spec.defaultArrival === "burst" ? { kind: "burst" } : { kind: "poisson", rate: 1 });
  const times = arrivalTimes(arrival, o.requests, rng.fork(2));
  const out: WorkloadRequest[] = new Array(o.requests);
  for (let i = 0; i < o.requests; i++) {
    let [p, d] = drawPair(lengths, spec.prompt, spec.output, spec.spearman);
    if (o.maxModelLen !== undefined) [p, d] = clipToContext(p, d, o.maxModelLen);
    const maxTokens = o.maxModelLen === undefined
      ? Math.max(spec.maxTokens, d)
      : Math.max(d, Math.min(spec.maxTokens, o.maxModelLen - p));
    out[i] = {
      id: `r${i}`,
      arrivalTime: times[i],
      promptLength: p,
      outputLength: d,
      maxTokens,
    };
  }
  return out;
}

export { clipToContext, syntheticPromptTokens };
