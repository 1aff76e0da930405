/**
 * What the paper-reproduction experiments share: a simulated deployment (a model
 * profile on a GPU profile, KV capacity from its memory or given in tokens), the list
 * of plugins trusted for fast-forward, a ranker trained for `ltr`, and table printing.
 *
 * @module
 */

import { type SimRequest, simulate, type SimulationOptions } from "../../core/simulation.ts";
import { searchCapacity } from "../../cli/capacity.ts";
import { modelProfile } from "../../kernels/sim/models.ts";
import { simModel } from "../../kernels/sim/sim_model.ts";
import { gpuProfile } from "../../kernels/sim/hardware.ts";
import { kvCapacityBlocks } from "../../kernels/sim/kv_capacity.ts";
import { trainOn } from "../../cli/train_ranker.ts";
import { DEFAULT_FEATURES } from "../../policies/ltr/features.ts";
import { DEFAULT_TRAIN } from "../../policies/ltr/listmle.ts";

/** A plugin choice per slot. */
export type Plugins = Record<string, { name: string; options?: Record<string, unknown> }>;

/**
 * Plugins whose plan is "decode every running request" whenever nothing waits and every
 * running request decodes, so runs of such steps may be computed at once. The ranking
 * schedulers keep per-request state that tolerates skipped decisions (idle and service
 * counters read the engine's step and clock).
 */
export const FAST_FORWARD_SAFE: Readonly<Record<string, readonly string[]>> = {
  scheduler: ["fcfs", "priority", "ltr", "mlfq", "oracle-sjf", "oracle-srtf"],
  batcher: [
    "vllm",
    "prefill-first",
    "sarathi",
    "orca",
    "fastertransformer",
    "simple-chunking",
    "lightllm-router",
  ],
};

/** Engine options of a simulated deployment. */
export function deployment(o: {
  model: string;
  gpu: string;
  plugins: Plugins;
  maxModelLen: number;
  /** KV capacity in tokens; default: what the GPU's memory leaves (optionally `memoryGiB`). */
  kvTokens?: number;
  /** Override of the GPU's memory, GiB (A100 40G on an A100 80G profile). */
  memoryGiB?: number;
  seed?: number;
}): SimulationOptions["engine"] {
  const profile = modelProfile(o.model);
  const hw = gpuProfile(o.gpu);
  const hardware = o.memoryGiB ? { ...hw, memory: o.memoryGiB * 1024 ** 3 } : hw;
  const numBlocks = o.kvTokens !== undefined
    ? Math.ceil(o.kvTokens / 16)
    : kvCapacityBlocks({ hardware, model: profile, blockSize: 16 });
  return {
    model: simModel(profile),
    blockSize: 16,
    numBlocks,
    maxModelLen: o.maxModelLen,
    maxBatchSeqs: 4096,
    maxBatchTokens: 65536,
    seed: o.seed ?? 0,
    log: () => {},
    plugins: { executor: { name: "sim", options: { gpu: o.gpu } }, ...o.plugins },
  };
}

/** Print a Markdown table. */
export function markdownTable(header: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

/** Fixed decimals, or "-" for undefined / NaN. */
export function fmt(x: number | undefined, digits = 2): string {
  return x === undefined || !Number.isFinite(x) ? "-" : x.toFixed(digits);
}

/**
 * Sarathi-Serve's capacity: the highest Poisson rate whose P99 time-between-tokens
 * (preemption stalls included) is at most `tbtSlo` seconds with a median scheduling delay of
 * at most 2 s and no failed request, by binary search to 2.5 %.
 */
export async function tbtCapacity(
  engine: SimulationOptions["engine"],
  workloadAt: (rate: number) => SimRequest[],
  tbtSlo: number,
  fastForwardSafe?: Readonly<Record<string, readonly string[]>>,
): Promise<{ capacity: number; probes: number }> {
  const { capacity, probes } = await searchCapacity(async (rate) => {
    const r = await simulate({ engine, requests: workloadAt(rate), fastForwardSafe });
    const p99Tbt = (r.summary.itl_ms.percentiles.p99 ?? 0) / 1000;
    const delay = r.summary.scheduling_delay_ms.median / 1000;
    return {
      rate,
      p99Tbt,
      p50SchedDelay: delay,
      ok: r.summary.failed === 0 && p99Tbt <= tbtSlo && delay <= 2,
    };
  }, { start: 1, granularity: 0.025, maxProbes: 14 });
  return { capacity, probes: probes.length };
}

/**
 * Train the default ListMLE ranker on `requests` (10 % held out) and write it to a fresh
 * temporary folder, for `--scheduler.ranker`. Remove `dir` when done.
 */
export async function trainRankerFile(
  requests: readonly SimRequest[],
): Promise<
  {
    ranker: ReturnType<typeof trainOn>["ranker"];
    tau: number;
    train: number;
    path: string;
    dir: string;
  }
> {
  const { ranker, report } = trainOn(requests, DEFAULT_FEATURES, {
    holdout: 0.1,
    epochs: DEFAULT_TRAIN.epochs,
    listSize: DEFAULT_TRAIN.listSize,
    lr: DEFAULT_TRAIN.lr,
    weightDecay: DEFAULT_TRAIN.weightDecay,
    seed: 0,
  });
  const dir = await Deno.makeTempDir();
  const path = `${dir}/ranker.json`;
  await Deno.writeTextFile(path, JSON.stringify(ranker.toJSON()));
  return { ranker, tau: report.tau, train: report.train, path, dir };
}
