/**
 * Decision time of this folder's policies at 256 running and 1,000 waiting requests:
 * an engine on a virtual clock with a stand-in executor is filled to that state, run
 * for `warmup` more steps (the engine's first few hundred steps in a process are slower
 * while the JIT settles, whatever the policy), then each plugin's time per step is
 * measured over 300 steps.
 *
 * `deno run -A bench/experiments/decision_time.ts [--warmup N]` (default 300)
 *
 * @module
 */

import { z } from "zod";
import { Engine } from "../../core/engine.ts";
import { VirtualClock } from "../../core/clock.ts";
import { presetModel } from "../../core/model/load.ts";
import { definePlugin } from "../../plugins/define.ts";
import { builtinRegistry } from "../../plugins/builtins.ts";
import { generateLearnable } from "../workloads/learnable.ts";
import { UsageError } from "../../core/errors.ts";

const standIn = definePlugin({
  name: "stand-in",
  slot: "executor",
  options: z.object({}),
  create: () => ({
    simulated: true,
    run: (b) => ({ tokens: b.sequences.map((s) => (s.sample ? 20 : -1)), duration: 0.02 }),
  }),
});

/** Median, 90th percentile and mean decision time per step of each slot, microseconds. */
export async function measure(
  plugins: Record<string, { name: string; options?: Record<string, unknown> }>,
  steps = 300,
  warmup = 300,
  programs = 0,
): Promise<Record<string, { p50: number; p90: number; mean: number }>> {
  const registry = builtinRegistry();
  registry.register(standIn);
  const engine = await Engine.create({
    model: presetModel("tiny"),
    registry,
    clock: new VirtualClock(),
    numBlocks: 256 * 80,
    maxModelLen: 4096,
    maxBatchSeqs: 1024,
    detokenize: false,
    log: () => {},
    plugins: { executor: { name: "stand-in" }, ...plugins },
  });
  const reqs = generateLearnable({ requests: 1256, seed: 1 });
  for (const r of reqs) {
    engine.add({
      id: r.id,
      promptTokens: r.promptTokens,
      // Turns of `programs` agent programs, for program-aware policies.
      ...(programs > 0 ? { programId: `p${Number(r.id.slice(1)) % programs}` } : {}),
      sampling: { maxTokens: 4000, ignoreEos: true },
    }, () => {});
  }
  // Fill to 256 running (prompts are about 150 tokens: a few dozen steps).
  for (let i = 0; i < 400 && engine.running.length < 256; i++) await engine.step();
  for (let i = 0; i < warmup; i++) await engine.step();
  const times: Record<string, number[]> = {};
  for (let i = 0; i < steps; i++) {
    const r = await engine.step();
    for (const [slot, t] of Object.entries(r!.decisionTime)) (times[slot] ??= []).push(t * 1e6);
  }
  const out: Record<string, { p50: number; p90: number; mean: number }> = {
    state: { p50: engine.running.length, p90: engine.waiting.length, mean: 0 },
  };
  for (const [slot, t] of Object.entries(times)) {
    t.sort((a, b) => a - b);
    const q = (p: number) => t[Math.min(t.length - 1, Math.floor(p * t.length))];
    out[slot] = { p50: q(0.5), p90: q(0.9), mean: t.reduce((a, b) => a + b, 0) / t.length };
  }
  await engine.close();
  return out;
}

/** Print decision times for the policy sets of this folder. */
export async function main(args: string[]): Promise<void> {
  const i = args.indexOf("--warmup");
  const warmup = i >= 0 ? Number(args[i + 1]) : 300;
  if (!(Number.isInteger(warmup) && warmup >= 0)) {
    throw new UsageError(`--warmup must be an integer >= 0, got ${args[i + 1]}`, "warmup");
  }
  const dir = await Deno.makeTempDir();
  const ranker = `${dir}/ranker.json`;
  const { main: train } = await import("../../cli/train_ranker.ts");
  const log = console.log;
  console.log = () => {};
  await train(["--learnable", "3000", "--out", ranker, "--epochs", "3"]);
  console.log = log;
  // The batcher caps running at 256 by memory-free means: admission is still asked each step.
  const sets: [
    string,
    Record<string, { name: string; options?: Record<string, unknown> }>,
    number?,
  ][] = [
    ["fcfs + watermark + vllm", { batcher: { name: "vllm", options: { maxNumSeqs: 256 } } }],
    ["ltr (ranker)", {
      scheduler: { name: "ltr", options: { ranker } },
      batcher: { name: "vllm", options: { maxNumSeqs: 256 } },
    }],
    ["ltr (ranker, no starvation guard)", {
      scheduler: { name: "ltr", options: { ranker, starveLimit: 0 } },
      batcher: { name: "vllm", options: { maxNumSeqs: 256 } },
    }],
    ["ltr (online)", {
      scheduler: { name: "ltr" },
      batcher: { name: "vllm", options: { maxNumSeqs: 256 } },
    }],
    ["mlfq", {
      scheduler: { name: "mlfq" },
      batcher: { name: "vllm", options: { maxNumSeqs: 256 } },
    }],
    ["past-future", {
      admission: { name: "past-future" },
      batcher: { name: "sarathi", options: { maxNumSeqs: 1024 } },
    }],
    ["reserve-max", {
      admission: { name: "reserve-max" },
      batcher: { name: "sarathi", options: { maxNumSeqs: 1024 } },
    }],
    ["sarathi", { batcher: { name: "sarathi", options: { maxNumSeqs: 256 } } }],
    ["orca", { batcher: { name: "orca", options: { maxNumSeqs: 256, reserve: "max-tokens" } } }],
    ["simple-chunking", { batcher: { name: "simple-chunking", options: { maxNumSeqs: 256 } } }],
    ["program-fcfs + ttl (300 programs)", {
      scheduler: { name: "program-fcfs" },
      kvcache: { name: "ttl" },
      batcher: { name: "vllm", options: { maxNumSeqs: 256 } },
    }, 300],
  ];
  // One untimed run first: the process's first engine pays the JIT's warm-up.
  await measure(sets[0][1], 10, warmup);
  console.log(
    "policy set | running | waiting | scheduler us | admission us | batcher us (each p50 / p90 / mean)",
  );
  for (const [label, plugins, programs] of sets) {
    const m = await measure(plugins, 300, warmup, programs);
    const f = (s: string) =>
      m[s] ? `${m[s].p50.toFixed(0)} / ${m[s].p90.toFixed(0)} / ${m[s].mean.toFixed(0)}` : "-";
    console.log(
      `${label} | ${m.state.p50} | ${m.state.p90} | ${f("scheduler")} | ${f("admission")} | ${
        f("batcher")
      }`,
    );
  }
  await Deno.remove(dir, { recursive: true });
}

if (import.meta.main) await main(Deno.args);
