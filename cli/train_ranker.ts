/**
 * `train-ranker`: fit the `ltr` scheduler's length ranker with ListMLE on a trace whose
 * lines carry prompt token ids and true output lengths, report Kendall's tau on a
 * held-out split, and write the ranker file that `--scheduler.ranker FILE` loads.
 *
 * ```
 * deno run -A main.ts train-ranker --trace t.jsonl --out ranker.json
 * deno run -A main.ts train-ranker --learnable 10000 --save-trace t.jsonl --out ranker.json
 * ```
 *
 * @module
 */

import { UsageError } from "../core/errors.ts";
import { flagsHelp, type FlagSpecs, parseFlags } from "./flags.ts";
import { readTrace, toJsonl } from "../bench/workloads/trace.ts";
import { generateLearnable } from "../bench/workloads/learnable.ts";
import type { WorkloadRequest } from "../bench/workloads/types.ts";
import { type FeatureConfig, Featurizer } from "../policies/ltr/features.ts";
import { DEFAULT_TRAIN, type Example, trainRanker } from "../policies/ltr/listmle.ts";
import { kendallTau } from "../policies/ltr/kendall.ts";
import { Rng } from "../kernels/sim/rng.ts";

/** Flags of `train-ranker`. */
export const TRAIN_RANKER_FLAGS: FlagSpecs = {
  trace: { type: "string", description: "JSONL trace with promptTokens and outputLength per line" },
  learnable: {
    type: "int",
    description: "instead of a trace, train on this many requests of the learnable workload",
    min: 10,
    max: 1_000_000,
  },
  "save-trace": {
    type: "string",
    description: "write the learnable requests used to this JSONL file",
  },
  out: { type: "string", description: "ranker file to write", required: true },
  holdout: {
    type: "number",
    description: "fraction held out for Kendall's tau",
    default: 0.1,
    min: 0.01,
    max: 0.5,
  },
  epochs: {
    type: "int",
    description: "passes over the training split",
    default: DEFAULT_TRAIN.epochs,
    min: 1,
    max: 1000,
  },
  "list-size": {
    type: "int",
    description: "requests per ListMLE list",
    default: DEFAULT_TRAIN.listSize,
    min: 2,
    max: 4096,
  },
  lr: {
    type: "number",
    description: "Adam step size",
    default: DEFAULT_TRAIN.lr,
    min: 1e-6,
    max: 1,
  },
  "weight-decay": {
    type: "number",
    description: "decoupled weight decay",
    default: DEFAULT_TRAIN.weightDecay,
    min: 0,
    max: 1,
  },
  dim: {
    type: "int",
    description: "hashed feature slots (a power of two)",
    default: 1 << 14,
    min: 64,
    max: 1 << 22,
  },
  "max-n": { type: "int", description: "longest token n-gram", default: 4, min: 1, max: 8 },
  "head-tokens": {
    type: "int",
    description: "leading tokens with n-gram features of their own",
    default: 48,
    min: 0,
    max: 4096,
  },
  seed: {
    type: "int",
    description: "seed of the split, the shuffles and the learnable workload",
    default: 0,
  },
};

/** Help text. */
export function help(): string {
  return [
    "Usage: deno run -A main.ts train-ranker (--trace t.jsonl | --learnable N) --out ranker.json [flags]",
    "",
    ...flagsHelp(TRAIN_RANKER_FLAGS),
  ].join("\n");
}

/** What training produced, for callers and tests. */
export interface TrainReport {
  /** Requests trained on. */
  train: number;
  /** Requests held out. */
  heldOut: number;
  /** Kendall's tau-b of scores against shorter-is-better on the held-out split. */
  tau: number;
  /** Seconds of training. */
  seconds: number;
}

/** Train from requests that carry prompt tokens; writes nothing. */
export function trainOn(
  requests: readonly WorkloadRequest[],
  features: FeatureConfig,
  o: {
    holdout: number;
    epochs: number;
    listSize: number;
    lr: number;
    weightDecay: number;
    seed: number;
  },
  log: (line: string) => void = () => {},
): { ranker: ReturnType<typeof trainRanker>; report: TrainReport } {
  requests.forEach((r, i) => {
    if (!r.promptTokens) {
      throw new UsageError(
        `request ${
          r.id ?? i
        } has no promptTokens; the ranker learns from prompt token ids (trace lines need "promptTokens")`,
        "trace",
      );
    }
  });
  if (requests.length < 20) {
    throw new UsageError(
      `the trace has ${requests.length} requests; training needs at least 20`,
      "trace",
    );
  }
  const f = new Featurizer(features);
  const order = requests.map((_, i) => i);
  const rng = new Rng(o.seed ^ 0x7e57);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const nTest = Math.max(10, Math.round(requests.length * o.holdout));
  const examples: Example[] = order.map((i) => ({
    x: f.vector(requests[i].promptTokens!),
    length: requests[i].outputLength,
  }));
  const test = examples.slice(0, nTest), train = examples.slice(nTest);
  const t0 = performance.now();
  const ranker = trainRanker(train, features, {
    epochs: o.epochs,
    listSize: o.listSize,
    lr: o.lr,
    weightDecay: o.weightDecay,
    seed: o.seed,
  }, (ep, loss) => log(`epoch ${ep}: ListMLE loss ${loss.toFixed(4)}`));
  const seconds = (performance.now() - t0) / 1000;
  const scores = test.map((e) => {
    let s = 0;
    for (let k = 0; k < e.x.index.length; k++) s += ranker.weights[e.x.index[k]] * e.x.value[k];
    return s;
  });
  // Higher score means shorter: compare with negated lengths.
  const tau = kendallTau(scores, test.map((e) => -e.length));
  const report: TrainReport = { train: train.length, heldOut: test.length, tau, seconds };
  ranker.training = { ...report, ...o, features };
  return { ranker, report };
}

/** Run `train-ranker`; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const { values: v, given } = parseFlags(args, TRAIN_RANKER_FLAGS);
  if (given.has("trace") === given.has("learnable")) {
    throw new UsageError("give exactly one of --trace FILE and --learnable N", "trace");
  }
  const dim = v.dim as number;
  if ((dim & (dim - 1)) !== 0) {
    throw new UsageError(`--dim must be a power of two, got ${dim}`, "dim");
  }
  const seed = v.seed as number;
  let requests: WorkloadRequest[];
  if (given.has("trace")) {
    requests = await readTrace(v.trace as string);
  } else {
    requests = generateLearnable({ requests: v.learnable as number, seed });
    if (given.has("save-trace")) {
      await Deno.writeTextFile(v["save-trace"] as string, toJsonl(requests));
    }
  }
  const features: FeatureConfig = {
    dim,
    maxN: v["max-n"] as number,
    headTokens: v["head-tokens"] as number,
  };
  const { ranker, report } = trainOn(requests, features, {
    holdout: v.holdout as number,
    epochs: v.epochs as number,
    listSize: v["list-size"] as number,
    lr: v.lr as number,
    weightDecay: v["weight-decay"] as number,
    seed,
  }, (line) => console.error(line));
  await Deno.writeTextFile(v.out as string, JSON.stringify(ranker.toJSON()) + "\n");
  console.log(
    `trained on ${report.train} requests in ${
      report.seconds.toFixed(1)
    } s; held-out ${report.heldOut}: Kendall tau ${report.tau.toFixed(3)}; wrote ${v.out}`,
  );
  return 0;
}
