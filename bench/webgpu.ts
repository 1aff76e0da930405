/**
 * `deno task bench webgpu`: decode throughput of the WebGPU forward pass and the share of
 * the device's memory bandwidth it achieves.
 *
 * For each batch size: B sequences with a `--context`-token prompt are prefilled, then
 * decoded. Two numbers per batch:
 * - end to end: steps run one after another, each with its read-back (what serving gets;
 *   in Deno every read-back costs about 10 ms, deno-webgpu-wasm-notes 0.1);
 * - device: identical decode passes repeated in one submission, less one pass, so the
 *   read-back floor cancels (`kernels/webgpu/timing.ts`); bytes moved per pass (weights once, plus each sequence's KV)
 *   over that time is the achieved bandwidth.
 * The yardstick is a streaming-read probe kernel on the same device, and `--peak-gbs`
 * (the GPU's data-sheet bandwidth) when given.
 *
 * Then decoding ahead (`--ahead 8`: greedy tokens fed back on the device, 1 + 8 tokens
 * per sequence per submission and read-back) against one token per read-back; the cost
 * of sampling per decode step, end to end (the same step repeated): greedy
 * (argmax on the GPU), temperature with top-k 50 (candidates selected on the GPU, 50 pairs
 * per row read back), and the same sampling from whole logits rows read back to the host;
 * and greedy decoding through the engine with the executor's own decoding-ahead policy,
 * against none (`--engine-requests 1,8`: that many requests, one joining per step).
 *
 * Flags: `--model NAME` (a preset, or `tinyllama-1.1b`: a 1.1B dummy-weight Llama shape),
 * `--batches 1,64 --context 128 --steps 8 --budget-s 20 --weights auto|f32|f16
 * --peak-gbs 3350 --ahead 8 --engine-requests 1,8`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { openGpu } from "../kernels/webgpu/device.ts";
import { GpuRunner, type RunnerSequence } from "../kernels/webgpu/runner.ts";
import { bind, buffer, pipeline, signature, STORAGE } from "../kernels/webgpu/resources.ts";
import { bandwidthShader, PROBE_LOADS, PROBE_THREADS } from "../kernels/webgpu/wgsl/probe.ts";
import { presetConfig } from "../core/model/presets.ts";
import { dummyWeights } from "../core/model/dummy.ts";
import type { Model, ModelConfig, ModelWeights } from "../core/model/types.ts";
import { ByteTokenizer } from "../core/model/byte_tokenizer.ts";
import { Engine } from "../core/engine.ts";
import type { WebGpuExecutor } from "../kernels/webgpu/executor.ts";
import type { WeightType } from "../kernels/webgpu/wgsl/common.ts";
import { deviceSeconds } from "../kernels/webgpu/timing.ts";
import { GREEDY, sampleToken, sampleTopK } from "../core/sampling.ts";
import type { SamplingParams } from "../core/types.ts";

/** Temperature sampling with top-k 50, as a chat client commonly asks. */
const TOP_K_50: SamplingParams = { ...GREEDY, temperature: 0.8, topK: 50, seed: 1 };

/** An engine on the webgpu executor for {@link engineDecode}, with room for `maxRequests`. */
function decodeEngine(
  model: Model,
  maxRequests: number,
  decodeAhead: number,
  weights: WeightType,
): Promise<Engine> {
  return Engine.create({
    model,
    blockSize: 16,
    numBlocks: 8 * maxRequests + 8,
    plugins: { executor: { name: "webgpu", options: { weights, decodeAhead } } },
    log: () => {},
  });
}

/**
 * Greedy decoding through `engine`: `n` requests of a 20-token prompt and 48 tokens, one
 * joining per step. Tokens/s, and the read-backs and tokens answered from decoding ahead
 * that it took.
 */
async function engineDecode(
  engine: Engine,
  n: number,
): Promise<{ tokS: number; readbacks: number; ahead: number }> {
  const executor = engine.executor as WebGpuExecutor;
  const before = executor.stats();
  let tokens = 0;
  const started = performance.now();
  for (let step = 0; step < n || engine.hasWork; step++) {
    if (step < n) {
      const prompt = Array.from({ length: 20 }, (_, i) => 3 + ((step * 37 + i * 11) % 200));
      engine.add(
        { promptTokens: prompt, sampling: { temperature: 0, maxTokens: 48, ignoreEos: true } },
        (ev) => {
          if (ev.type === "token") tokens++;
        },
      );
    }
    await engine.step();
  }
  const seconds = (performance.now() - started) / 1000;
  const after = executor.stats();
  return {
    tokS: tokens / seconds,
    readbacks: after.readbacks - before.readbacks,
    ahead: after.aheadTokens - before.aheadTokens,
  };
}

/** Milliseconds per decode step for each way of sampling (the same step repeated). */
async function samplingCosts(
  runner: GpuRunner,
  seqs: RunnerSequence[],
  steps: number,
): Promise<string> {
  const ways: [string, Partial<RunnerSequence>][] = [
    ["greedy", { topK: 0, wantLogits: false }],
    ["top-k 50 on the GPU", { topK: 50, wantLogits: false }],
    ["top-k 50 from logits rows", { topK: 0, wantLogits: true }],
  ];
  const parts: string[] = [];
  for (const [name, how] of ways) {
    const batch = seqs.map((s) => ({ ...s, ...how }));
    let picked = 0;
    const s = await seconds(async () => {
      for (let i = 0; i < steps; i++) {
        const res = await runner.run(batch, 0);
        for (let r = 0; r < batch.length; r++) {
          const c = res.candidates[r];
          const row = res.logits[r];
          if (c) picked += sampleTopK(c.ids, c.logits, TOP_K_50, i);
          else if (row) picked += sampleToken(row, TOP_K_50, i).token;
          else picked += res.greedy[r];
        }
      }
    });
    if (picked < 0) throw new Error("unreachable");
    parts.push(`${name} ${(1000 * s / steps).toFixed(2)}`);
  }
  return `ms/step: ${parts.join(", ")}`;
}

/** A 1.1B-parameter Llama shape (TinyLlama's), for dummy weights. */
const TINYLLAMA: ModelConfig = {
  dim: 2048,
  hiddenDim: 5632,
  nLayers: 22,
  nHeads: 32,
  nKvHeads: 4,
  headDim: 64,
  vocabSize: 32000,
  maxSeqLen: 2048,
  ropeTheta: 10000,
  normEps: 1e-5,
  tieEmbeddings: false,
  bosTokenId: 1,
  eosTokenIds: [2],
};

function weightBytes(c: ModelConfig, type: WeightType): number {
  const qkv = (c.nHeads + 2 * c.nKvHeads) * c.headDim * c.dim;
  const layer = qkv + c.nHeads * c.headDim * c.dim + 3 * c.hiddenDim * c.dim;
  const lm = c.vocabSize * c.dim; // the LM head is read once per step; the embedding by row
  return (c.nLayers * layer + lm) * (type === "f16" ? 2 : 4);
}

async function seconds(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
}

/** GB/s of the streaming-read probe over `bytes` bytes. */
async function probe(device: GPUDevice, bytes: number, budget: number): Promise<number> {
  const per = PROBE_THREADS * PROBE_LOADS;
  const groups = Math.floor(bytes / 16 / per);
  const src = buffer(device, groups * per * 16, STORAGE, "probe-src");
  const sums = buffer(device, groups * 4, STORAGE, "probe-sums");
  const sig = signature(device, ["ro", "rw"]);
  const pipe = await pipeline(device, sig, bandwidthShader(), "bandwidth-probe");
  const group = bind(device, sig, [src, sums]);
  const x = Math.min(groups, 65535);
  const y = Math.ceil(groups / x);
  const submit = async (n: number) => {
    const enc = device.createCommandEncoder();
    for (let i = 0; i < n; i++) {
      const pass = enc.beginComputePass();
      pass.setPipeline(pipe);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(x, y);
      pass.end();
    }
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
  };
  // Workgroups past the end (x * y > groups) read out of bounds: WebGPU clamps, harmless.
  const secs = await deviceSeconds(submit, budget / 4);
  src.destroy();
  sums.destroy();
  return (groups * per * 16) / secs / 1e9;
}

/** Entry point for `deno task bench webgpu`. */
export async function main(args: string[]): Promise<void> {
  // Mesa's Vulkan driver warns on stderr when this is unset.
  if (!Deno.env.get("XDG_RUNTIME_DIR")) Deno.env.set("XDG_RUNTIME_DIR", Deno.makeTempDirSync());
  const { values } = parseArgs({
    args,
    options: {
      model: { type: "string" },
      batches: { type: "string", default: "1,64" },
      context: { type: "string", default: "128" },
      steps: { type: "string", default: "8" },
      "budget-s": { type: "string", default: "20" },
      weights: { type: "string", default: "auto" },
      "peak-gbs": { type: "string" },
      ahead: { type: "string", default: "8" },
      "engine-requests": { type: "string", default: "1,8" },
    },
  });
  const gpu = await openGpu();
  const info = gpu.info;
  console.log(
    `adapter: ${info.description}; fallback ${info.isFallback}; shader-f16 ${info.f16}; ` +
      `subgroups ${info.subgroups}; max binding ${
        (info.maxStorageBufferBindingSize / 2 ** 20).toFixed(0)
      } MiB; ` +
      `workgroup memory ${info.maxComputeWorkgroupStorageSize} B`,
  );
  const modelName = values.model ?? (info.isFallback ? "small" : "tinyllama-1.1b");
  const config = modelName === "tinyllama-1.1b" ? TINYLLAMA : presetConfig(modelName);
  if (!config) throw new Error(`unknown model ${modelName}`);
  const type: WeightType = values.weights === "f32" || values.weights === "f16"
    ? values.weights
    : (info.f16 && !info.isFallback ? "f16" : "f32");
  const batches = values.batches.split(",").map(Number);
  const context = Number(values.context);
  const steps = Number(values.steps);
  const budget = Number(values["budget-s"]);
  const maxB = Math.max(...batches);
  const blockSize = 16;
  const aheadSteps = Number(values.ahead);
  // Room for the greedy steps, then as many tokens again decoded ahead.
  const positions = context + 2 * steps + aheadSteps + 3;
  const blocksPer = Math.ceil(positions / blockSize);
  let t = performance.now();
  const weights = dummyWeights(config, 0);
  const genS = (performance.now() - t) / 1000;
  t = performance.now();
  const runner = await GpuRunner.create(
    gpu,
    config,
    weights,
    {
      maxTokens: 2048,
      maxSeqs: maxB,
      maxPositions: positions,
      numBlocks: maxB * blocksPer,
      blockSize,
      matvecMaxRows: 32,
    },
    type,
    true,
  );
  console.log(
    `model ${modelName} (${config.nLayers} layers, dim ${config.dim}), weights ${type} ` +
      `(${(weightBytes(config, type) / 1e9).toFixed(2)} GB), subgroup reductions ` +
      `${runner.subgroups ? "used" : "not used"}; dummy weights ${genS.toFixed(1)} s, ` +
      `upload+compile ${((performance.now() - t) / 1000).toFixed(1)} s`,
  );
  const probeBytes = Math.min(1 << 30, info.maxStorageBufferBindingSize, info.maxBufferSize);
  const probeGbs = await probe(gpu.device, probeBytes, budget);
  const peak = values["peak-gbs"] ? Number(values["peak-gbs"]) : undefined;
  console.log(
    `bandwidth probe: ${probeGbs.toFixed(1)} GB/s` +
      (peak ? ` (${(100 * probeGbs / peak).toFixed(0)}% of the ${peak} GB/s data sheet)` : ""),
  );
  const kvDim = config.nKvHeads * config.headDim;
  for (const B of batches) {
    const seqs: RunnerSequence[] = Array.from({ length: B }, (_, b) => ({
      tokens: Array.from({ length: context }, (_, i) => 3 + ((b * 131 + i * 7) % 250)),
      startPos: 0,
      blockTable: Array.from({ length: blocksPer }, (_, i) => b * blocksPer + i),
      prefixLen: 0,
      mode: 0,
      sample: true,
      wantLogits: false,
    }));
    // Prefill in chunks that fit the token budget.
    const per = Math.max(1, Math.floor(2048 / context));
    let greedy: Int32Array = new Int32Array(B);
    for (let first = 0; first < B; first += per) {
      const res = await runner.run(seqs.slice(first, first + per), 0);
      greedy.set(res.greedy, first);
    }
    const advance = () =>
      seqs.forEach((s, i) => {
        s.startPos += s.tokens.length;
        s.tokens = [greedy[i]];
      });
    advance();
    const e2e = await seconds(async () => {
      for (let i = 0; i < steps; i++) {
        greedy = (await runner.run(seqs, 0)).greedy;
        advance();
      }
    });
    const device = await deviceSeconds((n) => runner.run(seqs, 0, n), budget);
    const ctxLen = seqs[0].startPos + 1;
    const bytes = weightBytes(config, type) + B * ctxLen * config.nLayers * 2 * kvDim * 4;
    const gbs = bytes / device / 1e9;
    console.log(
      `decode B=${String(B).padStart(2)}: end to end ${(B * steps / e2e).toFixed(1)} tok/s ` +
        `(${(1000 * e2e / steps).toFixed(2)} ms/step); device ${(B / device).toFixed(1)} tok/s ` +
        `(${(1000 * device).toFixed(3)} ms/step, ${gbs.toFixed(1)} GB/s = ` +
        `${(100 * gbs / probeGbs).toFixed(0)}% of the probe` +
        (peak ? `, ${(100 * gbs / peak).toFixed(0)}% of the data sheet)` : ")"),
    );
    console.log(
      `  sampling B=${String(B).padStart(2)}, ${await samplingCosts(runner, seqs, steps)}`,
    );
    if (aheadSteps > 0) {
      // Decoding ahead: each submission yields 1 + aheadSteps tokens per sequence.
      const ahead = {
        steps: aheadSteps,
        seqs: seqs.map((_, i) => i),
        tables: seqs.map((s) => s.blockTable),
      };
      const passes = Math.max(1, Math.floor(steps / (aheadSteps + 1)));
      const t = await seconds(async () => {
        for (let i = 0; i < passes; i++) {
          const res = await runner.run(seqs, 0, 1, ahead);
          seqs.forEach((s, b) => {
            s.startPos += s.tokens.length + aheadSteps;
            s.tokens = [res.ahead[(aheadSteps - 1) * B + b]];
          });
        }
      });
      const made = B * passes * (aheadSteps + 1);
      console.log(
        `  decoding ${aheadSteps} ahead B=${String(B).padStart(2)}: end to end ` +
          `${(made / t).toFixed(1)} tok/s, ${((made / t) / (B * steps / e2e)).toFixed(2)}x ` +
          `one token per read-back`,
      );
    }
  }
  runner.destroy();
  gpu.device.destroy();
  const model: Model = {
    name: modelName,
    config,
    tokenizer: new ByteTokenizer(config.vocabSize),
    source: "dummy(seed=0)",
    dtype: "f32",
    weights: () => Promise.resolve<ModelWeights>(weights),
  };
  // One engine each way (uploading a 1B model's weights takes a while), reused for each n.
  const counts = values["engine-requests"].split(",").map(Number).filter((x) => x > 0);
  if (counts.length === 0) return;
  const most = Math.max(...counts);
  const plainEngine = await decodeEngine(model, most, 0, type);
  const aheadEngine = await decodeEngine(model, most, aheadSteps, type);
  for (const n of counts) {
    const plain = await engineDecode(plainEngine, n);
    const ahead = await engineDecode(aheadEngine, n);
    console.log(
      `engine, ${n > 1 ? `${n} requests joining one per step` : "1 request"}, 48 tokens each: ` +
        `decoding ahead ` +
        `${ahead.tokS.toFixed(1)} tok/s (${ahead.readbacks} read-backs, ${ahead.ahead} tokens ` +
        `ahead) against ${plain.tokS.toFixed(1)} (${plain.readbacks}): ` +
        `${(ahead.tokS / plain.tokS).toFixed(2)}x`,
    );
  }
  await plainEngine.close();
  await aheadEngine.close();
}

if (import.meta.main) await main(Deno.args);
