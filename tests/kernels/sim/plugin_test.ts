import assert from "node:assert/strict";
import { batchShape, simExecutor } from "../../../kernels/sim/plugin.ts";
import { simModel } from "../../../kernels/sim/sim_model.ts";
import { modelProfile, totalParams } from "../../../kernels/sim/models.ts";
import { kvCapacityBlocks } from "../../../kernels/sim/kv_capacity.ts";
import { gpuProfile } from "../../../kernels/sim/hardware.ts";
import { fitLinearProfile, meanAbsPctError, type StepSample } from "../../../kernels/sim/fit.ts";
import { LinearCostModel } from "../../../kernels/sim/cost_model.ts";
import { parseOptions } from "../../../plugins/options.ts";
import type { Executor, PluginContext } from "../../../core/slots.ts";
import type { Batch, BatchSequence, SamplingParams } from "../../../core/types.ts";
import { UsageError } from "../../../core/errors.ts";

const model = simModel(modelProfile("mistral-7b"));
const EOS = model.config.eosTokenIds[0];
const sampling = { temperature: 0, maxTokens: 100 } as SamplingParams;

function ctx(seed = 0): PluginContext {
  return {
    model,
    kv: { blockSize: 16, numBlocks: 1000 },
    limits: { maxBatchTokens: 8192, maxBatchSeqs: 256, maxModelLen: 32768 },
    seed,
    log: () => {},
  };
}

async function make(options: Record<string, unknown> = {}, seed = 0): Promise<Executor> {
  return await simExecutor.create(
    parseOptions(simExecutor, options) as never,
    ctx(seed),
  ) as Executor;
}

function seq(
  id: string,
  start: number,
  n: number,
  outputIndex: number,
  hidden?: number,
): BatchSequence {
  return {
    id,
    tokens: new Array(n).fill(20),
    startPos: start,
    blockTable: [],
    sample: true,
    sampling,
    outputIndex,
    hidden: hidden === undefined ? undefined : { outputLength: hidden },
  };
}

function batch(sequences: BatchSequence[]): Batch {
  return {
    step: 1,
    sequences,
    numTokens: sequences.reduce((a, s) => a + s.tokens.length, 0),
    numDecodes: sequences.filter((s) => s.tokens.length === 1).length,
  };
}

Deno.test("sim executor: EOS exactly at the hidden output length", async () => {
  const ex = await make();
  assert.equal(ex.simulated, true);
  const out = await ex.run(
    batch([seq("a", 100, 1, 2, 3), seq("b", 0, 50, 0, 1), seq("c", 10, 1, 0, 5)]),
  );
  assert.equal(out.tokens[0], EOS); // third token of a 3-token output
  assert.equal(out.tokens[1], EOS); // a 1-token output ends at once
  assert.notEqual(out.tokens[2], EOS);
  assert(out.duration! > 0);
  const none = await ex.run(batch([{ ...seq("d", 0, 8, 0, 4), sample: false }]));
  assert.equal(none.tokens[0], -1);
});

Deno.test("sim executor: requests without a hidden length get a seeded length", async () => {
  const lengths = async (seed: number) => {
    const ex = await make({ meanOutput: 20 }, seed);
    const out: number[] = [];
    for (const id of ["x", "y", "z"]) {
      let i = 0;
      while ((await ex.run(batch([seq(id, 10 + i, 1, i)]))).tokens[0] !== EOS) i++;
      out.push(i + 1);
    }
    return out;
  };
  const a = await lengths(1);
  assert.deepEqual(a, await lengths(1));
  assert.notDeepEqual(a, await lengths(2));
});

Deno.test("sim executor: the step time is the cost model's for the batch's shape", async () => {
  const ex = await make({ gpu: "h100" });
  const b = batch([seq("p", 64, 128, 0, 10), seq("d1", 300, 1, 3, 10), seq("d2", 500, 1, 4, 10)]);
  const shape = batchShape(b);
  assert.deepEqual(shape, {
    prefillTokens: 128,
    prefillContext: 64,
    decodes: 2,
    decodeContext: 800,
    prefillPairs: 128 * (64 + 64),
    prefillSeqs: 1,
  });
  assert.equal((await ex.run(b)).duration, ex.costModel!.stepTime(shape));
  await assert.rejects(() => make({ gpu: "tpu-v9" }), UsageError);
});

Deno.test("kv capacity: memory minus weights, in blocks", () => {
  const p = modelProfile("llama-2-7b");
  const blocks = kvCapacityBlocks({ hardware: gpuProfile("a100-80g"), model: p });
  // 80 GiB * 0.9 - 13.5 GB of weights - 1 GiB, over 0.5 MiB of KV per token, 16 tokens a block.
  const expect = Math.floor(
    (80 * 1024 ** 3 * 0.9 - totalParams(p) * 2 - 1024 ** 3) / (524288 * 16),
  );
  assert.equal(blocks, expect);
  const tp2 = kvCapacityBlocks({
    hardware: gpuProfile("a100-80g"),
    model: modelProfile("llama-2-70b"),
    tp: 2,
  });
  assert(tp2 > 0);
  assert.throws(
    () => kvCapacityBlocks({ hardware: gpuProfile("a40"), model: modelProfile("llama-2-70b") }),
    UsageError,
  );
});

Deno.test("fit: recovers a linear profile from noiseless samples", () => {
  const truth = new LinearCostModel({
    name: "t",
    model: "m",
    base: 2e-3,
    perToken: 5e-5,
    perSeq: 1e-5,
    perPair: 3e-8,
    perDecodeContext: 2e-7,
  });
  const samples: StepSample[] = [];
  for (const c of [8, 32, 128]) {
    for (const p of [0, 64]) {
      const shape = { prefillTokens: c, prefillContext: p, decodes: 0, decodeContext: 0 };
      samples.push({ shape, seconds: truth.stepTime(shape) });
    }
  }
  for (const b of [1, 4, 16]) {
    for (const ctx of [32, 320]) {
      const shape = { prefillTokens: 0, prefillContext: 0, decodes: b, decodeContext: b * ctx };
      samples.push({ shape, seconds: truth.stepTime(shape) });
    }
  }
  const fit = new LinearCostModel(fitLinearProfile(samples, "cpu", "m"));
  assert(meanAbsPctError(fit, samples) < 0.01);
});

Deno.test("sim executor: swapping a block moves its KV over the host link", async () => {
  const ex = await make({ gpu: "a100-80g" });
  const prof = modelProfile("mistral-7b");
  // Mistral-7B: 32 layers x 8 KV heads x 128 x K and V x 2 bytes = 128 KiB per token.
  const perBlock = 16 * 131072 / gpuProfile("a100-80g").hostBandwidth;
  assert.equal(prof.nLayers * prof.nKvHeads * prof.headDim * 2 * 2, 131072);
  const three = [{ block: 4, slot: 0 }, { block: 9, slot: 1 }, { block: 2, slot: 2 }];
  const t = await ex.swap!(three, [{ block: 7, slot: 5 }]) as number;
  assert.ok(Math.abs(t - 4 * perBlock) < 1e-12, `${t} s for 4 blocks`);
  assert.equal(await ex.swap!([], []), 0);
  // 2 MiB per block at 25 GB/s: about 84 us.
  assert.ok(perBlock > 80e-6 && perBlock < 90e-6);
});
