/**
 * `main.ts profile --executor reference`: time a grid of batches on a real executor on
 * this machine, fit the linear `cpu` profile and write it as JSON (read by
 * `simulate --gpu cpu`).
 *
 * @module
 */

import { UsageError } from "../core/errors.ts";
import { loadModel } from "../core/model/load.ts";
import type { Executor } from "../core/slots.ts";
import { builtinRegistry } from "../plugins/builtins.ts";
import { parseOptions } from "../plugins/options.ts";
import { flagsHelp, type FlagSpecs, parseFlags } from "./flags.ts";
import { fitLinearProfile, meanAbsPctError } from "../kernels/sim/fit.ts";
import { LinearCostModel } from "../kernels/sim/cost_model.ts";
import { profileExecutor } from "../kernels/sim/profiler.ts";
import { writeLinearProfile } from "../kernels/sim/profile_file.ts";
import type { LinearProfile } from "../kernels/sim/cost_model.ts";
import type { Model } from "../core/model/types.ts";

const FLAGS: FlagSpecs = {
  executor: { type: "string", description: "real executor to profile", default: "reference" },
  model: { type: "string", description: "model preset or folder to profile on", default: "tiny" },
  out: {
    type: "string",
    description: "where to write the profile",
    default: "bench/results/cpu-profile.json",
  },
  repeats: {
    type: "int",
    description: "timed runs per batch shape (fastest kept)",
    default: 5,
    min: 1,
    max: 50,
  },
  "max-chunk": {
    type: "int",
    description: "largest prefill chunk profiled",
    default: 128,
    min: 16,
    max: 4096,
  },
  seed: { type: "int", description: "dummy-weight seed", default: 0, min: 0 },
};

/** Profile an executor plugin on a model and fit; returns the profile and its in-sample error. */
export async function profileAndFit(
  executorName: string,
  model: Model,
  o: { repeats: number; maxChunk: number },
): Promise<{ profile: LinearProfile; error: number; samples: number }> {
  const registry = builtinRegistry();
  const plugin = registry.get("executor", executorName);
  const blockSize = 16;
  const numBlocks = Math.max(64, Math.ceil((o.maxChunk * 3 + 64) * 20 / blockSize));
  const exec = await plugin.create(parseOptions(plugin, {}) as never, {
    model,
    kv: { blockSize, numBlocks },
    limits: { maxBatchTokens: 1 << 20, maxBatchSeqs: 4096, maxModelLen: model.config.maxSeqLen },
    seed: 0,
    log: () => {},
  }) as Executor;
  if (exec.simulated) {
    throw new UsageError(
      `executor "${executorName}" is simulated; profile a real one`,
      "--executor",
    );
  }
  try {
    const samples = await profileExecutor(exec, model.config, {
      blockSize,
      numBlocks,
      repeats: o.repeats,
      maxChunk: o.maxChunk,
    });
    const profile = fitLinearProfile(samples, "cpu", model.name);
    return {
      profile,
      error: meanAbsPctError(new LinearCostModel(profile), samples),
      samples: samples.length,
    };
  } finally {
    await exec.close?.();
  }
}

/** Help text. */
export function help(): string {
  return [
    "Usage: deno run -A main.ts profile [--executor reference] [--model tiny] [--out FILE]",
    "",
    ...flagsHelp(FLAGS),
  ].join("\n");
}

/** `profile` command. */
export async function main(args: string[]): Promise<number> {
  const { values } = parseFlags(args, FLAGS);
  const model = await loadModel(values.model as string, { seed: values.seed as number });
  const t0 = performance.now();
  const { profile, error, samples } = await profileAndFit(values.executor as string, model, {
    repeats: values.repeats as number,
    maxChunk: values["max-chunk"] as number,
  });
  await writeLinearProfile(values.out as string, profile);
  console.log(
    `profiled ${samples} batch shapes of ${values.executor} on ${model.name} in ${
      ((performance.now() - t0) / 1000).toFixed(1)
    } s`,
  );
  console.log(
    `fit: base ${(profile.base * 1e3).toFixed(3)} ms, per token ${
      (profile.perToken * 1e6).toFixed(2)
    } us, ` +
      `per seq ${(profile.perSeq * 1e6).toFixed(2)} us, per pair ${
        (profile.perPair * 1e9).toFixed(2)
      } ns, ` +
      `per decode-context token ${(profile.perDecodeContext * 1e9).toFixed(2)} ns`,
  );
  console.log(`in-sample mean absolute error ${(error * 100).toFixed(1)}%; wrote ${values.out}`);
  return 0;
}
