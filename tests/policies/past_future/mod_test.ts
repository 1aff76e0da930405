import assert from "node:assert/strict";
import { lcg, runWorkload, type TestRequest } from "../_harness.ts";
import { Engine } from "../../../core/engine.ts";
import { presetModel } from "../../../core/model/load.ts";
import { UsageError } from "../../../core/errors.ts";
import { parseOptions } from "../../../plugins/options.ts";
import { pastFuture, type PastFutureAdmission } from "../../../policies/past_future/mod.ts";
import type { RequestView } from "../../../core/types.ts";

const rand = lcg(11);
// 120 requests arriving over time, outputs far below their 1,000-token cap.
const requests: TestRequest[] = Array.from({ length: 120 }, (_, i) => ({
  prompt: rand(40, 160),
  output: rand(20, 300),
  arrival: i * 0.05,
  maxTokens: 1000,
}));

const run = (admission: string, options: Record<string, unknown> = {}) =>
  runWorkload({
    plugins: { admission: { name: admission, options }, batcher: { name: "sarathi" } },
    requests,
    numBlocks: 240,
  });

Deno.test("past-future admits more than reserve-max and preempts far less than watermark", async () => {
  const pf = await run("past-future", { window: 40, initialLength: 300 });
  const cons = await run("reserve-max");
  const aggr = await run("watermark");
  for (const r of [pf, cons, aggr]) assert.equal(r.finishes.size, 120);
  const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;
  assert.equal(cons.preemptions, 0);
  assert.ok(aggr.preemptions > 10, `watermark preempted only ${aggr.preemptions} times`);
  assert.ok(
    pf.preemptions * 3 <= aggr.preemptions,
    `past-future ${pf.preemptions} vs watermark ${aggr.preemptions}`,
  );
  assert.ok(
    mean(pf.running) > 1.5 * mean(cons.running),
    `running ${mean(pf.running)} vs ${mean(cons.running)}`,
  );
});

Deno.test("oracle admission: no preemption and a fuller batch than reserve-max", async () => {
  const or = await run("oracle");
  const cons = await run("reserve-max");
  assert.equal(or.finishes.size, 120);
  assert.equal(or.preemptions, 0);
  const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;
  assert.ok(mean(or.running) > 1.5 * mean(cons.running));
});

Deno.test("past-future records finished lengths and hands them to its successor", async () => {
  const ctx = {
    model: presetModel("tiny"),
    kv: { blockSize: 16, numBlocks: 100 },
    limits: { maxBatchTokens: 4096, maxBatchSeqs: 256, maxModelLen: 4096 },
    seed: 0,
    log: () => {},
  };
  const opts = parseOptions(pastFuture, { window: 4, initialLength: 7 }) as never;
  const a = await pastFuture.create(opts, ctx) as PastFutureAdmission;
  const done = (n: number) => ({ outputTokens: new Array(n).fill(0) }) as unknown as RequestView;
  a.onFinish!(done(30), "stop", 0);
  a.onFinish!(done(40), "length", 0);
  a.onFinish!(done(99), "abort", 0);
  assert.deepEqual(a.history.values(), [7, 7, 30, 40]);
  const b = await pastFuture.create(opts, ctx) as PastFutureAdmission;
  b.importState!(a.exportState!());
  assert.deepEqual(b.history.values(), [7, 7, 30, 40]);
});

Deno.test("oracle admission and oracle schedulers refuse a real executor", async () => {
  const model = presetModel("tiny");
  for (
    const plugins of [
      { admission: { name: "oracle" } },
      { scheduler: { name: "oracle-sjf" } },
      { scheduler: { name: "oracle-srtf" } },
      { scheduler: { name: "ltr", options: { predictor: "noisy-oracle" } } },
    ]
  ) {
    await assert.rejects(
      () =>
        Engine.create({
          model,
          plugins: { executor: { name: "reference" }, ...plugins },
          log: () => {},
        }),
      (e) => e instanceof UsageError && /simulator only/.test(e.message),
    );
  }
});
