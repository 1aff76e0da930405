import assert from "node:assert/strict";
import { referenceExecutor } from "../../../kernels/reference/plugin.ts";
import { presetModel } from "../../../core/model/load.ts";
import type { PluginContext } from "../../../core/slots.ts";
import type { Batch, SamplingParams } from "../../../core/types.ts";
import { naiveLogits } from "../../../kernels/reference/naive.ts";

const sampling: SamplingParams = {
  temperature: 0,
  topK: 0,
  topP: 1,
  seed: 0,
  maxTokens: 8,
  stopTokenIds: [],
  stop: [],
  ignoreEos: false,
  logprobs: -1,
};

function context(): PluginContext {
  return {
    model: presetModel("tiny-gqa", 2),
    kv: { blockSize: 4, numBlocks: 16 },
    limits: { maxBatchTokens: 64, maxBatchSeqs: 8, maxModelLen: 512 },
    seed: 0,
    log: () => {},
  };
}

Deno.test("reference executor plugin: declaration and options", () => {
  assert.equal(referenceExecutor.name, "reference");
  assert.equal(referenceExecutor.slot, "executor");
  assert.deepEqual(referenceExecutor.options.parse({}), { keepLogits: false });
  assert.throws(() => referenceExecutor.options.parse({ keepLogits: "yes" }));
});

Deno.test("reference executor runs a batch: tokens, logprobs and logits", async () => {
  const ctx = context();
  const exec = await referenceExecutor.create({ keepLogits: true }, ctx);
  assert.equal(exec.simulated, false);
  const prompt = [1, 100, 101, 102, 103, 104];
  const batch: Batch = {
    step: 0,
    numTokens: 9,
    numDecodes: 0,
    sequences: [
      {
        id: "a",
        tokens: prompt,
        startPos: 0,
        blockTable: [7, 3],
        sample: true,
        sampling: { ...sampling, logprobs: 2 },
        outputIndex: 0,
      },
      {
        id: "b",
        tokens: [1, 50, 51],
        startPos: 0,
        blockTable: [0],
        sample: false,
        sampling,
        outputIndex: 0,
      },
    ],
  };
  const out = await exec.run(batch);
  assert.equal(out.tokens.length, 2);
  assert.equal(out.tokens[1], -1);
  const weights = await ctx.model.weights();
  const oracle = naiveLogits(weights, ctx.model.config, prompt);
  const logits = out.logits![0]!;
  for (let i = 0; i < oracle.length; i++) assert.ok(Math.abs(logits[i] - oracle[i]) < 1e-4);
  assert.equal(out.logits![1], undefined);
  const best = out.tokens[0];
  assert.equal(out.logprobs![0]!.top.length, 2);
  assert.equal(out.logprobs![0]!.top[0].token, best);
  assert.ok(out.logprobs![0]!.logprob < 0);
  assert.equal(out.logprobs![1], undefined);

  // Decode the sampled token for "a" and finish "b"'s prompt in the same batch.
  const next = await exec.run({
    step: 1,
    numTokens: 3,
    numDecodes: 1,
    sequences: [
      {
        id: "a",
        tokens: [best],
        startPos: 6,
        blockTable: [7, 3],
        sample: true,
        sampling,
        outputIndex: 1,
      },
      {
        id: "b",
        tokens: [52, 53],
        startPos: 3,
        blockTable: [0, 9],
        sample: true,
        sampling,
        outputIndex: 0,
      },
    ],
  });
  const wantA = naiveLogits(weights, ctx.model.config, [...prompt, best]);
  const wantB = naiveLogits(weights, ctx.model.config, [1, 50, 51, 52, 53]);
  for (let i = 0; i < wantA.length; i++) {
    assert.ok(Math.abs(next.logits![0]![i] - wantA[i]) < 1e-4);
    assert.ok(Math.abs(next.logits![1]![i] - wantB[i]) < 1e-4);
  }
  assert.equal(next.logprobs, undefined);
});

Deno.test("reference executor leaves logits out unless asked", async () => {
  const exec = await referenceExecutor.create(referenceExecutor.options.parse({}), context());
  const out = await exec.run({
    step: 0,
    numTokens: 2,
    numDecodes: 0,
    sequences: [{
      id: "a",
      tokens: [1, 80],
      startPos: 0,
      blockTable: [1],
      sample: true,
      sampling: { ...sampling, temperature: 0.8, seed: 4 },
      outputIndex: 0,
    }],
  });
  assert.equal(out.logits, undefined);
  assert.ok(out.tokens[0] >= 0 && out.tokens[0] < 259);
});
