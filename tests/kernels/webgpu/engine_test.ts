import assert from "node:assert/strict";
import { Engine } from "../../../core/engine.ts";
import { presetModel } from "../../../core/model/load.ts";
import type { WebGpuExecutor } from "../../../kernels/webgpu/executor.ts";
import { HAS_GPU } from "./harness.ts";
import { type Job, jobs, type JobShape, serveJobs } from "../_jobs.ts";
import { recordedDrafts, registryWith } from "../../core/_fakes.ts";

/** Every other prompt starts with one shared 12-token text; 4..23 new tokens. */
const SHAPE: JobShape = {
  promptMax: 20,
  tokensMin: 4,
  tokensSpan: 20,
  arrivalSteps: 8,
  sharedPrefix: Array.from({ length: 12 }, (_, i) => 3 + i * 11),
};

let recorded: number[][] = [];
const drafts = recordedDrafts(() => recorded);

/** Serve `work` through an engine on the webgpu executor; each request's tokens and counters. */
async function serve(work: Job[], decodeAhead: number, speculation = "none") {
  const engine = await Engine.create({
    model: presetModel("tiny", 5),
    registry: registryWith(drafts),
    blockSize: 4,
    numBlocks: 18, // few blocks: requests get preempted and recomputed
    maxBatchTokens: 9, // drafts included
    plugins: {
      executor: { name: "webgpu", options: { weights: "f32", decodeAhead } },
      speculation: { name: speculation },
      kvcache: { name: "lru-prefix" },
      // Passes of at most 9 tokens always take the matrix-vector kernels, so a token's
      // arithmetic does not depend on what else shares its pass.
      batcher: { name: "vllm", options: { maxNumBatchedTokens: 9 } },
    },
    log: () => {},
  });
  try {
    const outputs = (await serveJobs(engine, work)).tokens;
    const stats = (engine.executor as WebGpuExecutor).stats();
    const { preemptions, prefixHitTokens, acceptedDraftTokens } = engine.stats;
    return { outputs, preemptions, prefixHitTokens, acceptedDraftTokens, ...stats };
  } finally {
    await engine.close();
  }
}

Deno.test({
  name: "an engine on webgpu gives the same tokens decoding ahead, with preemption and prefix hits",
  ignore: !HAS_GPU,
  sanitizeOps: false,
  async fn() {
    const work = jobs(7, 3, SHAPE);
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

Deno.test({
  name: "an engine on webgpu verifies drafts: the tokens of decoding one at a time",
  ignore: !HAS_GPU,
  sanitizeOps: false,
  async fn() {
    const work = jobs(7, 4, SHAPE);
    const plain = await serve(work, 0);
    recorded = plain.outputs;
    for (const speculation of ["recorded", "ngram"]) {
      drafts.reseed(3);
      const spec = await serve(work, 6, speculation);
      assert.deepEqual(spec.outputs, plain.outputs, speculation);
      if (speculation === "recorded") assert.ok(spec.acceptedDraftTokens > 0);
    }
  },
});

Deno.test({
  name: "webgpu verifies sampled drafts too: top-k on the GPU, temperature on the host",
  ignore: !HAS_GPU,
  sanitizeOps: false,
  async fn() {
    const run = async (speculation: string) => {
      const engine = await Engine.create({
        model: presetModel("tiny", 5),
        registry: registryWith(drafts),
        maxBatchTokens: 9,
        plugins: {
          executor: { name: "webgpu", options: { weights: "f32", decodeAhead: 0 } },
          speculation: { name: speculation },
        },
        log: () => {},
      });
      const out: number[][] = [[], []];
      [{ topK: 20 }, { topK: 0 }].forEach((extra, i) =>
        engine.add(
          {
            id: `r${i}`,
            promptTokens: [5, 6, 7, 5, 6, 7],
            sampling: { temperature: 0.8, seed: 7 + i, maxTokens: 12, ignoreEos: true, ...extra },
          },
          (ev) => ev.type === "token" && out[i].push(ev.token),
        )
      );
      while (engine.hasWork) await engine.step();
      const accepted = engine.stats.acceptedDraftTokens;
      await engine.close();
      return { out, accepted };
    };
    const plain = await run("none");
    recorded = plain.out;
    drafts.reseed(5);
    const spec = await run("recorded");
    assert.deepEqual(spec.out, plain.out);
    assert.ok(spec.accepted > 0);
  },
});
