/**
 * The named workloads, each a pair of length distributions built from published
 * statistics (docs/SIMULATOR.md, "Workloads"; sources in the specs of the Sarathi-Serve,
 * Past-Future and Learning-to-Rank papers). No dataset is downloaded.
 *
 * @module
 */

import { UsageError } from "../../core/errors.ts";
import {
  empirical,
  type LengthDistribution,
  logNormal,
  uniform,
  withTail,
} from "./distributions.ts";

/** How a named workload draws its requests. */
export interface WorkloadSpec {
  /** Name on the command line (`--workload`). */
  readonly name: string;
  /** One line for `--help` and reports. */
  readonly description: string;
  /** Prompt lengths. */
  readonly prompt: LengthDistribution;
  /** True output lengths. */
  readonly output: LengthDistribution;
  /** Spearman rank correlation between prompt and output. */
  readonly spearman: number;
  /** The generation cap the engine sees. */
  readonly maxTokens: number;
  /** Arrival process used when none is given ("poisson" or "burst"). */
  readonly defaultArrival: "poisson" | "burst";
}

// ShareGPT-8k (Sarathi-Serve trace, Llama-2 tokenizer): percentiles 0,5,10,20..90,95,99,100.
const SHAREGPT_PROMPT = empirical([
  [0, 1],
  [5, 29],
  [10, 74],
  [20, 382],
  [30, 777],
  [40, 1203],
  [50, 1730],
  [60, 2401],
  [70, 3235],
  [80, 4278],
  [90, 5696],
  [95, 6563],
  [99, 7434],
  [100, 8141],
]);
const SHAREGPT_OUTPUT = empirical([
  [0, 2],
  [5, 44],
  [10, 84],
  [20, 181],
  [30, 271],
  [40, 346],
  [50, 415],
  [60, 493],
  [70, 581],
  [80, 683],
  [90, 834],
  [95, 920],
  [99, 998],
  [100, 1024],
]);

/** The built-in workloads, by name. */
export const WORKLOADS: Readonly<Record<string, WorkloadSpec>> = Object.freeze({
  "sharegpt": {
    name: "sharegpt",
    description: "ShareGPT-8k conversations (prompt p50 1730, p90 5696; output p50 415, p90 834)",
    prompt: SHAREGPT_PROMPT,
    output: SHAREGPT_OUTPUT,
    spearman: 0,
    maxTokens: 4096,
    defaultArrival: "poisson",
  },
  "arxiv": {
    name: "arxiv",
    description: "arXiv summarization, 4k-capped (prompt p50 2730; output p50 167, p99 3271)",
    // p0 of the prompt is not published; 300 is an assumption.
    prompt: empirical([[0, 300], [10, 1242], [50, 2730], [90, 3702], [99, 3933], [100, 4054]]),
    output: empirical([[0, 10], [10, 78], [50, 167], [90, 372], [95, 736], [99, 3271], [
      100,
      4056,
    ]]),
    spearman: -0.11,
    maxTokens: 4096,
    defaultArrival: "poisson",
  },
  "sharegpt-o1": {
    name: "sharegpt-o1",
    description: "ShareGPT prompts answered by o1 (mean prompt 381, mean output 2160)",
    prompt: empirical([
      [0, 9],
      [5, 14],
      [10, 17],
      [20, 25],
      [30, 40],
      [40, 90],
      [50, 209],
      [
        60,
        331,
      ],
      [70, 446],
      [80, 628],
      [90, 839],
      [95, 1217],
      [99, 2594],
      [100, 10798],
    ]),
    output: empirical([
      [0, 149],
      [5, 463],
      [10, 663],
      [20, 1021],
      [30, 1345],
      [40, 1638],
      [
        50,
        1954,
      ],
      [60, 2234],
      [70, 2618],
      [80, 3082],
      [90, 3872],
      [95, 4569],
      [99, 6451],
      [100, 10935],
    ]),
    spearman: 0.3,
    maxTokens: 12000,
    defaultArrival: "poisson",
  },
  "dist-1": {
    name: "dist-1",
    description: "decode-heavy: prompt U[32, 4096], output U[2048, 4096]",
    prompt: uniform(32, 4096),
    output: uniform(2048, 4096),
    spearman: 0,
    maxTokens: 4096,
    defaultArrival: "poisson",
  },
  "dist-2": {
    name: "dist-2",
    description: "balanced: prompt U[3000, 5000], output U[3000, 5000]",
    prompt: uniform(3000, 5000),
    output: uniform(3000, 5000),
    spearman: 0,
    maxTokens: 6000,
    defaultArrival: "poisson",
  },
  "dist-3": {
    name: "dist-3",
    description: "prefill-heavy: prompt U[2048, 4096], output U[32, 4096]",
    prompt: uniform(2048, 4096),
    output: uniform(32, 4096),
    spearman: 0,
    maxTokens: 4096,
    defaultArrival: "poisson",
  },
  "chat-longtail": {
    name: "chat-longtail",
    description:
      "short chat prompts (log-normal, median 40) and ShareGPT outputs with 2% run-aways at the 8192 cap",
    prompt: logNormal(40, 1, 4, 1024),
    output: withTail(SHAREGPT_OUTPUT, 0.02, 8192),
    spearman: 0,
    maxTokens: 8192,
    defaultArrival: "poisson",
  },
  "burst": {
    name: "burst",
    description: "ShareGPT lengths, every request arriving at once",
    prompt: SHAREGPT_PROMPT,
    output: SHAREGPT_OUTPUT,
    spearman: 0,
    maxTokens: 4096,
    defaultArrival: "burst",
  },
});

/** Names of the built-in workloads. */
export function workloadNames(): string[] {
  return Object.keys(WORKLOADS);
}

/** Look up a workload; UsageError naming the allowed ones otherwise. */
export function workloadSpec(name: string): WorkloadSpec {
  const w = WORKLOADS[name];
  if (!w) {
    throw new UsageError(
      `unknown workload "${name}": allowed are ${workloadNames().join(", ")} (or --trace FILE)`,
      "workload",
    );
  }
  return w;
}
