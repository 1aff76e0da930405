/**
 * The policies on a real executor: a few hundred requests of the learnable workload run
 * through the `reference` executor (plain TypeScript tensors) on the `tiny` preset on the
 * wall clock, with a KV pool small enough that admission and preemption matter. Each
 * request's output is forced (ignore EOS) to its workload length scaled down by 8 and
 * capped at 96 tokens, so that ranking stays learnable from the prompt.
 *
 * `deno run -A bench/experiments/real.ts [--requests N]`
 *
 * @module
 */

import { Engine } from "../../core/engine.ts";
import { presetModel } from "../../core/model/load.ts";
import { generateLearnable } from "../workloads/learnable.ts";
import { fmt, markdownTable, type Plugins, trainRankerFile } from "./common.ts";

/** Output tokens forced for a workload length. */
function forcedLength(outputLength: number): number {
  return Math.max(1, Math.min(96, Math.round(outputLength / 8)));
}

async function run(plugins: Plugins, n: number): Promise<(string | number)[]> {
  const engine = await Engine.create({
    model: presetModel("tiny"),
    numBlocks: 96,
    maxModelLen: 512,
    detokenize: false,
    log: () => {},
    plugins: { executor: { name: "reference" }, ...plugins },
  });
  const reqs = generateLearnable({ requests: n, seed: 31, maxPromptTokens: 300 });
  const t0 = performance.now();
  let perToken = 0, done = 0, tokens = 0;
  for (const r of reqs) {
    const want = forcedLength(r.outputLength);
    engine.add({
      id: r.id,
      promptTokens: r.promptTokens,
      sampling: { maxTokens: want, ignoreEos: true, temperature: 0 },
    }, (ev) => {
      if (ev.type !== "finish") return;
      done++;
      tokens += ev.usage.completionTokens;
      perToken += (performance.now() - t0) / 1000 / ev.usage.completionTokens;
    });
  }
  const decision: Record<string, number> = {};
  let steps = 0;
  engine.onStep((rep) => {
    steps++;
    for (const [s, t] of Object.entries(rep.decisionTime)) decision[s] = (decision[s] ?? 0) + t;
  });
  while (engine.hasWork) await engine.step();
  const wall = (performance.now() - t0) / 1000;
  const stats = engine.stats;
  await engine.close();
  const us = (s: string) => fmt((decision[s] ?? 0) / steps * 1e6, 1);
  return [
    done,
    tokens,
    fmt(wall, 1),
    fmt(perToken / done, 3),
    stats.preemptions,
    steps,
    `${us("scheduler")} / ${us("admission")} / ${us("batcher")}`,
  ];
}

/** Run every policy set and print the table. */
export async function main(args: string[]): Promise<void> {
  const i = args.indexOf("--requests");
  const n = i >= 0 ? Number(args[i + 1]) : 300;
  const { path: rankerPath, dir, ...report } = await trainRankerFile(
    generateLearnable({ requests: 5000, seed: 77 }),
  );
  const sarathi = { name: "sarathi", options: { tokenBudget: 256, maxNumSeqs: 32 } };
  const ltr = { name: "ltr", options: { ranker: rankerPath, tokenBudget: 256, maxNumSeqs: 32 } };
  const sets: [string, Plugins][] = [
    ["fcfs + watermark + vllm (defaults)", {
      batcher: { name: "vllm", options: { maxNumBatchedTokens: 256, maxNumSeqs: 32 } },
    }],
    ["prefill-first", { batcher: { name: "prefill-first", options: { maxNumSeqs: 32 } } }],
    ["sarathi", { batcher: sarathi }],
    ["orca", { batcher: { name: "orca", options: { maxNumSeqs: 16 } } }],
    ["fastertransformer", {
      batcher: { name: "fastertransformer", options: { maxNumSeqs: 16, reserve: "max-tokens" } },
    }],
    ["simple-chunking", {
      batcher: { name: "simple-chunking", options: { chunkSize: 256, maxNumSeqs: 32 } },
    }],
    ["past-future + sarathi", {
      admission: { name: "past-future", options: { window: 40, initialLength: 32 } },
      batcher: sarathi,
    }],
    ["reserve-max + sarathi", { admission: { name: "reserve-max" }, batcher: sarathi }],
    ["ltr + sarathi", { scheduler: ltr, batcher: sarathi }],
    ["mlfq + sarathi", {
      scheduler: { name: "mlfq", options: { tokenBudget: 256, maxNumSeqs: 32 } },
      batcher: sarathi,
    }],
    ["ltr + past-future + sarathi", {
      scheduler: ltr,
      admission: { name: "past-future", options: { window: 40, initialLength: 32 } },
      batcher: sarathi,
    }],
  ];
  console.log(
    `ranker held-out tau ${
      fmt(report.tau, 3)
    }; ${n} requests at once, tiny preset, reference executor, 96 KV blocks of 16 tokens\n`,
  );
  await run(sets[0][1], 20); // warm up the JIT before timing anything
  const rows: (string | number)[][] = [];
  for (const [label, plugins] of sets) {
    rows.push([label, ...await run(plugins, n)]);
    console.error(rows[rows.length - 1].join(" | "));
  }
  console.log(
    markdownTable([
      "policies",
      "finished",
      "tokens",
      "wall (s)",
      "mean latency per token (s)",
      "preemptions",
      "steps",
      "decision us/step (sched / adm / batch)",
    ], rows),
  );
  await Deno.remove(dir, { recursive: true });
}

if (import.meta.main) await main(Deno.args);
