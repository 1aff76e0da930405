import assert from "node:assert/strict";
import { type SimRequest, simulate } from "../../../core/simulation.ts";
import { builtinRegistry } from "../../../plugins/builtins.ts";
import { modelProfile } from "../../../kernels/sim/models.ts";
import { simModel } from "../../../kernels/sim/sim_model.ts";
import { generateAgentWorkload } from "../../../bench/workloads/agents.ts";
import { Engine } from "../../../core/engine.ts";
import { presetModel } from "../../../core/model/load.ts";

type Plugins = Record<string, { name: string; options?: Record<string, unknown> }>;

function run(requests: SimRequest[], plugins: Plugins, numBlocks: number) {
  return simulate({
    engine: {
      model: simModel(modelProfile("llama-3.1-8b")),
      registry: builtinRegistry(),
      numBlocks,
      maxModelLen: 32768,
      plugins: { executor: { name: "sim", options: { gpu: "a100-80g" } }, ...plugins },
    },
    requests,
  });
}

/** A few coding agents, contexts cut to a quarter: heavy pressure on a small pool. */
function agents(programs: number, seed: number): SimRequest[] {
  return generateAgentWorkload({
    workload: "swe-agent",
    programs,
    rate: 0.5,
    seed,
    maxModelLen: 32768,
    contextScale: 0.25,
  });
}

// Program a's first turn ends, then a request without a program ends later; a third one
// needs more memory than is free while a's tool runs. Least-recently-freed eviction takes
// a's blocks (freed first); a pin keeps them and takes the other request's.
const SCENARIO: SimRequest[] = [
  {
    id: "a.0",
    arrivalTime: 0,
    promptLength: 480,
    outputLength: 17,
    programId: "a",
    turn: { tool: "ls" },
  },
  { id: "f1", arrivalTime: 0.001, promptLength: 480, outputLength: 60 },
  { id: "f2", arrivalTime: 2.5, promptLength: 960, outputLength: 5 },
  {
    id: "a.1",
    arrivalTime: 0,
    promptLength: 700,
    outputLength: 5,
    programId: "a",
    toolTime: 3,
    turn: { last: true },
  },
];

Deno.test("ttl in the engine: a pinned turn's KV outlasts memory pressure during its tool call", async () => {
  const cached = async (kvcache: Plugins[string]) => {
    const r = await run(SCENARIO, { kvcache }, 100);
    assert.equal(r.summary.completed, 4);
    return r.records.find((x) => x.id === "a.1")!.cachedTokens;
  };
  const lru = await cached({ name: "lru-prefix" });
  const pinned = await cached({ name: "ttl", options: { mode: "fixed", fixedTtl: 5 } });
  // a.0's prompt and all but its last output token: 496 tokens, 31 full blocks.
  assert.equal(pinned, 496);
  assert.ok(lru < 200, `least-recently-freed kept ${lru} tokens`);
  // A pin that ends before the other request does protects nothing: its blocks queue as
  // if freed when it ended, ahead of that request's.
  const expired = await cached({ name: "ttl", options: { mode: "fixed", fixedTtl: 0.5 } });
  assert.ok(expired < 496, `an expired pin kept ${expired} tokens`);
});

Deno.test("continuum in the engine: agents complete under heavy memory pressure, no block leaks", async () => {
  const requests = agents(12, 4);
  const configs: Plugins[] = [
    { scheduler: { name: "fcfs" }, kvcache: { name: "lru-prefix" } },
    { scheduler: { name: "program-fcfs" }, kvcache: { name: "ttl" } },
    { scheduler: { name: "program-fcfs" }, kvcache: { name: "ttl", options: { mode: "fixed" } } },
  ];
  const jct: number[] = [];
  for (const plugins of configs) {
    const r = await run(requests, plugins, 1200); // 19k tokens: a few programs' contexts
    assert.equal(r.programs!.completed, 12, JSON.stringify(plugins));
    assert.equal(r.summary.failed, 0);
    assert.ok(r.engine.evictions > 0, "the pool was under pressure");
    jct.push(r.programs!.jct_s.mean);
  }
  // Serving programs first come, first served finishes them sooner on average.
  assert.ok(jct[1] < jct[0] && jct[2] < jct[0], `mean JCT ${jct.map((x) => x.toFixed(1))}`);
});

Deno.test("ttl hot swap: pins go back to the pool and the next policy carries on", async () => {
  const requests = agents(8, 5);
  let swaps = 0, used = -1;
  const r = await simulate({
    engine: {
      model: simModel(modelProfile("llama-3.1-8b")),
      registry: builtinRegistry(),
      numBlocks: 1200,
      maxModelLen: 32768,
      plugins: {
        executor: { name: "sim", options: { gpu: "a100-80g" } },
        scheduler: { name: "program-fcfs" },
        kvcache: { name: "ttl", options: { mode: "fixed", fixedTtl: 5 } },
      },
    },
    requests,
    onStep: (rep, engine) => {
      // Swap away from ttl and back every 150 steps, pins and all.
      if (rep.step % 150 === 149) {
        const next = swaps++ % 2 === 0 ? "lru-prefix" : "ttl";
        engine.swap("kvcache", next).catch((e) => {
          throw e;
        });
      }
      used = engine.pool.usedBlocks - engine.running.reduce((s, q) => s + q.numBlocks, 0);
    },
  });
  assert.ok(swaps >= 4, `${swaps} swaps`);
  assert.equal(r.programs!.completed, 8);
  assert.equal(r.summary.failed, 0);
  assert.ok(used <= 0, "no block is held by anything but running requests");
});

Deno.test("ttl with the reference executor: a pinned turn's follow-up reuses its computed KV", async () => {
  const model = presetModel("tiny");
  const serve = async (kvcache: Plugins[string]) => {
    const engine = await Engine.create({
      model,
      numBlocks: 24,
      blockSize: 16,
      plugins: { kvcache },
      log: () => {},
    });
    const run = async (input: Parameters<typeof engine.add>[0]) => {
      let done: { output: number[]; cached: number } | undefined;
      const output: number[] = [];
      engine.add(input, (ev) => {
        if (ev.type === "token") output.push(ev.token);
        else done = { output, cached: ev.usage.cachedTokens };
      });
      while (engine.hasWork) await engine.step();
      return done!;
    };
    const prompt = Array.from({ length: 150 }, (_, i) => 20 + (i * 7) % 200);
    const greedy = { temperature: 0, maxTokens: 20, ignoreEos: true };
    const first = await run({
      promptTokens: prompt,
      programId: "agent",
      turn: { tool: "bash" },
      sampling: greedy,
    });
    // While the tool runs, another client's request ends (its blocks are freed after the
    // turn's), then a long one needs more than the free blocks.
    const filler = (n: number, seed: number) =>
      Array.from({ length: n }, (_, i) => 30 + (i * seed) % 200);
    await run({ promptTokens: filler(100, 11), sampling: { ...greedy, maxTokens: 4 } });
    await run({ promptTokens: filler(200, 13), sampling: { ...greedy, maxTokens: 4 } });
    const next = [...prompt, ...first.output, 40, 41, 42];
    const second = await run({
      promptTokens: next,
      programId: "agent",
      turn: { last: true },
      sampling: greedy,
    });
    await engine.close();
    return second.cached;
  };
  // The first turn computed KV for its prompt and 19 of its 20 tokens: 10 full blocks.
  assert.equal(await serve({ name: "ttl", options: { mode: "fixed", fixedTtl: 600 } }), 160);
  // Least recently freed: the turn's last 5 blocks made room for the long request.
  assert.equal(await serve({ name: "lru-prefix" }), 80);
  assert.ok(await serve({ name: "lru-prefix" }) < 160);
});
