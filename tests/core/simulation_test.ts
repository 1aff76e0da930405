import assert from "node:assert/strict";
import { type SimRequest, simulate, type SimulationOptions } from "../../core/simulation.ts";
import { builtinRegistry } from "../../plugins/builtins.ts";
import { modelProfile } from "../../kernels/sim/models.ts";
import { simModel } from "../../kernels/sim/sim_model.ts";
import { generateWorkload } from "../../bench/workloads/generate.ts";
import { generateAgentWorkload } from "../../bench/workloads/agents.ts";
import { resultJson } from "../../bench/report/sim_report.ts";
import { UsageError } from "../../core/errors.ts";

const prof = modelProfile("llama-3-8b");

function options(
  requests: SimRequest[],
  extra: Partial<SimulationOptions> = {},
  plugins: Record<string, { name: string; options?: Record<string, unknown> }> = {},
  numBlocks = 4000,
): SimulationOptions {
  return {
    engine: {
      model: simModel(prof),
      registry: builtinRegistry(),
      numBlocks,
      plugins: { executor: { name: "sim", options: { gpu: "a100-80g" } }, ...plugins },
    },
    requests,
    ...extra,
  };
}

function work(n: number, rate: number, seed = 5): SimRequest[] {
  return generateWorkload({
    workload: "sharegpt",
    requests: n,
    seed,
    arrival: { kind: "poisson", rate },
    maxModelLen: 4096,
  });
}

Deno.test("simulation: the same seed gives byte-identical JSON", async () => {
  const a = await simulate(options(work(60, 5)));
  const b = await simulate(options(work(60, 5)));
  assert.equal(JSON.stringify(resultJson(a)), JSON.stringify(resultJson(b)));
  assert.equal(a.summary.completed, 60);
  const c = await simulate(options(work(60, 5, 6)));
  assert.notEqual(JSON.stringify(resultJson(a)), JSON.stringify(resultJson(c)));
});

Deno.test("simulation: every request produces exactly its hidden output length", async () => {
  const reqs = work(40, 10);
  const r = await simulate(options(reqs));
  const want = new Map(reqs.map((q) => [q.id, q.outputLength]));
  for (const rec of r.records) assert.equal(rec.outputTokens, want.get(rec.id));
  assert.equal(r.summary.total_output_tokens, reqs.reduce((a, q) => a + q.outputLength, 0));
});

for (
  const [label, rate, blocks, batcher] of [
    ["light load", 0.5, 4000, "vllm"],
    ["heavy load with preemption", 50, 700, "vllm"],
    ["prefill-first", 8, 1500, "prefill-first"],
  ] as const
) {
  Deno.test(`simulation: fast-forwarded and step-by-step runs agree exactly (${label})`, async () => {
    const reqs = work(80, rate);
    const plugins = { batcher: { name: batcher } };
    const ff = await simulate(options(reqs, { fastForward: true }, plugins, blocks));
    const slow = await simulate(options(reqs, { fastForward: false }, plugins, blocks));
    assert(ff.engine.fastForwardedSteps > 0, "nothing was fast-forwarded");
    assert.equal(slow.engine.fastForwardedSteps, 0);
    assert.deepEqual(ff.records, slow.records);
    const strip = (r: typeof ff) =>
      JSON.stringify({ ...resultJson(r), engine: { ...r.engine, fastForwardedSteps: 0 } });
    assert(strip(ff) === strip(slow), "fast-forwarded and step-by-step results differ");
  });
}

Deno.test("simulation: closed-loop clients with think time and SLA retries", async () => {
  const reqs = work(30, 1);
  const r = await simulate(options(reqs, {
    load: { kind: "closed", clients: 4, thinkTime: 0.5, retries: 1, sla: { ttft: 1 } },
  }));
  // 30 first attempts, plus one retry for each that missed the (very tight) TTFT SLA.
  const first = r.records.filter((x) => !x.id.includes("#"));
  const retries = r.records.filter((x) => x.id.endsWith("#1"));
  assert.equal(first.length, 30);
  assert(retries.length > 0);
  assert.equal(r.records.length, 30 + retries.length);
  // Never more than 4 requests in flight: each arrival waits for a free client.
  const events = r.records.flatMap((x) => [[x.arrival, 1], [x.finish, -1]] as [number, number][]);
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let inFlight = 0;
  for (const [, d] of events) {
    inFlight += d;
    assert(inFlight <= 4);
  }
  assert.equal(r.summary.request_goodput !== undefined, true);
});

Deno.test("simulation: a real executor is refused", async () => {
  const o = options(work(2, 1));
  o.engine.plugins = {};
  o.engine.model = (await import("../../core/model/load.ts")).presetModel("tiny");
  await assert.rejects(() => simulate(o), UsageError);
});

Deno.test("simulation: swap preemption keeps the KV instead of recomputing it", async () => {
  const reqs = work(80, 20);
  const run = (preemption: "recompute" | "swap", swapBlocks?: number) =>
    simulate({
      ...options(reqs, {}, {}, 700),
      engine: { ...options(reqs, {}, {}, 700).engine, preemption, swapBlocks },
    });
  const recompute = await run("recompute");
  const swap = await run("swap");
  const noRoom = await run("swap", 0);
  assert.ok(recompute.engine.preemptions > 0, "the small pool must preempt");
  assert.equal(recompute.engine.swapOuts, 0);
  assert.ok(swap.engine.swapOuts > 0);
  assert.ok(swap.engine.recomputedTokens < recompute.engine.recomputedTokens);
  for (const r of [recompute, swap, noRoom]) assert.equal(r.summary.completed, 80);
  // With no swap space every preemption recomputes, exactly as without swapping.
  assert.equal(noRoom.engine.swapOuts, 0);
  assert.deepEqual(noRoom.summary, recompute.summary);
});

/** A program of three turns: each follow-up extends the last turn's prompt and output. */
function program(id: string, at: number, pauses: [number, number]): SimRequest[] {
  return [
    { id: `${id}.0`, arrivalTime: at, promptLength: 200, outputLength: 20, programId: id },
    {
      id: `${id}.1`,
      arrivalTime: 0,
      promptLength: 400,
      outputLength: 10,
      programId: id,
      toolTime: pauses[0],
    },
    {
      id: `${id}.2`,
      arrivalTime: 0,
      promptLength: 600,
      outputLength: 5,
      programId: id,
      toolTime: pauses[1],
      turn: { last: true },
    },
  ];
}

Deno.test("simulation: a follow-up turn arrives its tool time after its predecessor and reuses its KV", async () => {
  const r = await simulate(options([...program("a", 0, [0.5, 2]), ...program("b", 0.1, [1, 0])]));
  const rec = new Map(r.records.map((x) => [x.id, x]));
  for (const [pid, pauses] of [["a", [0.5, 2]], ["b", [1, 0]]] as const) {
    for (const k of [1, 2]) {
      const prev = rec.get(`${pid}.${k - 1}`)!, cur = rec.get(`${pid}.${k}`)!;
      assert.ok(Math.abs(cur.arrival - (prev.finish + pauses[k - 1])) < 1e-9);
      // The prompt holds the previous prompt and output; the KV of all but the last output
      // token was computed, so every full block of it is a prefix hit.
      const computed = prev.promptTokens + prev.outputTokens - 1;
      assert.equal(cur.cachedTokens, Math.floor(computed / 16) * 16, `${pid}.${k}`);
    }
  }
  const p = r.programs!;
  assert.equal(p.programs, 2);
  assert.equal(p.completed, 2);
  assert.equal(p.mean_turns, 3);
  const jctA = rec.get("a.2")!.finish - 0, jctB = rec.get("b.2")!.finish - 0.1;
  assert.ok(Math.abs(p.jct_s.mean - (jctA + jctB) / 2) < 1e-9);
});

Deno.test("simulation: when a turn fails, its program's later turns are never sent", async () => {
  const full = await simulate(options(program("a", 0, [0.5, 0.5])));
  const first = full.records.find((x) => x.id === "a.0")!;
  // Stop while the second turn runs: it is aborted and the third is never sent.
  const cut = await simulate(
    options(program("a", 0, [0.5, 0.5]), { maxTime: first.finish + 0.52 }),
  );
  assert.deepEqual(cut.records.map((x) => [x.id, x.reason]), [["a.0", "stop"], ["a.1", "abort"]]);
  assert.equal(cut.programs!.completed, 0);
  assert.equal(cut.programs!.programs, 1);
});

Deno.test("simulation: follow-up turns are checked", async () => {
  const orphan: SimRequest[] = [
    { id: "x", arrivalTime: 0, promptLength: 10, outputLength: 2, programId: "p", toolTime: 1 },
  ];
  await assert.rejects(simulate(options(orphan)), /no earlier request of its program/);
  const negative = program("a", 0, [-1, 0]);
  await assert.rejects(simulate(options(negative)), /toolTime must be a number of seconds >= 0/);
  await assert.rejects(
    simulate(options(program("a", 0, [1, 1]), { load: { kind: "closed", clients: 2 } })),
    /need open-loop load/,
  );
});

Deno.test("simulation: fast-forward gives the same multi-turn results as stepping", async () => {
  const reqs = generateAgentWorkload({
    workload: "web-agent",
    programs: 6,
    rate: 1,
    seed: 2,
    maxModelLen: 8192,
    contextScale: 0.1,
  });
  // A small pool with a host tier: evictions, copies out and back inside fast-forwarded runs.
  const engine = (o: SimulationOptions) => ({ ...o.engine, hostCacheBlocks: 400 });
  const a0 = options(reqs, { fastForward: true }, {}, 300);
  const b0 = options(reqs, { fastForward: false }, {}, 300);
  const a = await simulate({ ...a0, engine: engine(a0) });
  const b = await simulate({ ...b0, engine: engine(b0) });
  assert.ok(a.engine.fastForwardedSteps > 0);
  assert.equal(b.engine.fastForwardedSteps, 0);
  assert.ok(a.engine.hostHitTokens > 0, "the host tier served prefixes");
  assert.deepEqual(resultJson(a).programs, resultJson(b).programs);
  assert.deepEqual(a.records, b.records);
  assert.equal(a.engine.hostStores, b.engine.hostStores);
});
