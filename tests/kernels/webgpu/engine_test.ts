import assert from "node:assert/strict";
import { Engine } from "../../../core/engine.ts";
import { presetModel } from "../../../core/model/load.ts";
import type { WebGpuExecutor } from "../../../kernels/webgpu/executor.ts";
import { HAS_GPU } from "./harness.ts";

interface Job {
  prompt: number[];
  maxTokens: number;
  arriveAtStep: number;
}

/** A fixed pseudo-random workload; every other prompt starts with one shared 12-token text. */
function jobs(n: number, seed: number): Job[] {
  let s = seed;
  const next = (m: number) => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return (s >>> 8) % m;
  };
  const shared = Array.from({ length: 12 }, (_, i) => 3 + i * 11);
  return Array.from({ length: n }, (_, k) => ({
    prompt: [
      ...(k % 2 === 0 ? shared : []),
      ...Array.from({ length: 1 + next(20) }, () => 3 + next(250)),
    ],
    maxTokens: 4 + next(20),
    arriveAtStep: next(8),
  }));
}

/** Serve `work` through an engine on the webgpu executor; each request's tokens and counters. */
async function serve(work: Job[], decodeAhead: number) {
  const engine = await Engine.create({
    model: presetModel("tiny", 5),
    blockSize: 4,
    numBlocks: 18, // few blocks: requests get preempted and recomputed
    plugins: {
      executor: { name: "webgpu", options: { weights: "f32", decodeAhead } },
      kvcache: { name: "lru-prefix" },
      // Passes of at most 9 tokens always take the matrix-vector kernels, so a token's
      // arithmetic does not depend on what else shares its pass.
      batcher: { name: "vllm", options: { maxNumBatchedTokens: 9 } },
    },
    log: () => {},
  });
  try {
    const outputs = work.map(() => [] as number[]);
    const maxStep = Math.max(...work.map((j) => j.arriveAtStep));
    for (let step = 0; step <= maxStep || engine.hasWork; step++) {
      work.forEach((j, k) => {
        if (j.arriveAtStep !== step) return;
        engine.add({
          id: `r${k}`,
          promptTokens: j.prompt,
          sampling: { temperature: 0, maxTokens: j.maxTokens, ignoreEos: true },
        }, (ev) => {
          if (ev.type === "token") outputs[k].push(ev.token);
        });
      });
      await engine.step();
      assert.ok(step < 2000, "the engine made no progress");
    }
    const stats = (engine.executor as WebGpuExecutor).stats();
    const { preemptions, prefixHitTokens } = engine.stats;
    return { outputs, preemptions, prefixHitTokens, ...stats };
  } finally {
    await engine.close();
  }
}

Deno.test({
  name: "an engine on webgpu gives the same tokens decoding ahead, with preemption and prefix hits",
  ignore: !HAS_GPU,
  sanitizeOps: false,
  async fn() {
    const work = jobs(7, 3);
    const plain = await serve(work, 0);
    const ahead = await serve(work, 6);
    assert.ok(plain.preemptions > 0, "the workload was meant to cause preemptions");
    assert.ok(plain.prefixHitTokens > 0, "and prefix-cache hits");
    assert.deepEqual(ahead.outputs, plain.outputs);
    work.forEach((j, k) => assert.equal(ahead.outputs[k].length, j.maxTokens));
    assert.equal(plain.aheadTokens, 0);
    assert.ok(ahead.aheadTokens > 0, "some steps were answered from decoding ahead");
    assert.ok(ahead.readbacks < plain.readbacks, `${ahead.readbacks} vs ${plain.readbacks}`);
  },
});
