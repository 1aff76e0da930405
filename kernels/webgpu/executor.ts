/**
 * The `webgpu` executor: the model's forward pass in WGSL through `navigator.gpu`, over
 * the engine's paged KV cache, with one read-back per step.
 *
 * Greedy sequences are sampled on the GPU (argmax). Sequences sampling with a temperature
 * and top-k get their k candidates selected on the GPU and read back as (id, logit)
 * pairs; the host draws from them with `sampleTopK` (core/sampling.ts). Other sequences
 * that sample with a temperature, or ask for log-probabilities, get their logits row in
 * the same read-back and are sampled on the host by `sampleToken`. Either way every
 * executor draws the same tokens.
 *
 * RelayAttention: a batch may carry a shared prompt (see `kernels/relay/types.ts`). Its
 * KV is computed once into contiguous per-layer buffers; when enough sequences of the
 * step share it (the gate), attention splits into the system part and the per-request
 * part, fused exactly; otherwise the shared positions are read inline by ordinary
 * attention. Both give the same tokens.
 *
 * @module
 */

import { z } from "zod";
import { definePlugin, type Plugin } from "../../plugins/define.ts";
import type { Executor, PluginContext } from "../../core/slots.ts";
import type {
  Batch,
  BatchSequence,
  SamplingParams,
  StepOutput,
  TokenLogprob,
} from "../../core/types.ts";
import { AheadCache } from "./decode_ahead.ts";
import { sampleToken, sampleTopK } from "../../core/sampling.ts";
import { UsageError } from "../../core/errors.ts";
import { openGpu } from "./device.ts";
import {
  GpuRunner,
  type RunnerResult,
  type RunnerSequence,
  type TopKCandidates,
} from "./runner.ts";
import { TOPK_MAX } from "./wgsl/topk.ts";
import type { RelayBatch } from "../relay/types.ts";
import { useRelay } from "../relay/gate.ts";
import type { WeightType } from "./wgsl/common.ts";

/** Options schema of the webgpu executor. */
export type WebGpuOptions = z.ZodObject<{
  keepLogits: z.ZodDefault<z.ZodBoolean>;
  weights: z.ZodDefault<z.ZodEnum<{ auto: "auto"; f32: "f32"; f16: "f16" }>>;
  matvecMaxRows: z.ZodDefault<z.ZodNumber>;
  relay: z.ZodDefault<z.ZodEnum<{ auto: "auto"; always: "always"; never: "never" }>>;
  relayMinSharers: z.ZodDefault<z.ZodNumber>;
  relayMinPrefix: z.ZodDefault<z.ZodNumber>;
  maxPassTokens: z.ZodDefault<z.ZodNumber>;
  subgroups: z.ZodDefault<z.ZodBoolean>;
  decodeAhead: z.ZodDefault<z.ZodNumber>;
  decodeAheadMaxSeqs: z.ZodDefault<z.ZodNumber>;
}>;

const options: WebGpuOptions = z.object({
  keepLogits: z.boolean().default(false).describe(
    "return each sampling sequence's full logits (for comparing executors)",
  ),
  weights: z.enum(["auto", "f32", "f16"]).default("auto").describe(
    "weight storage on the GPU; auto: f16 when shader-f16 is offered (f32 models on a software adapter: f32)",
  ),
  matvecMaxRows: z.number().int().min(1).max(256).default(32).describe(
    "batches of at most this many tokens use the matrix-vector kernels, larger ones the tiled matmul",
  ),
  relay: z.enum(["auto", "always", "never"]).default("auto").describe(
    "RelayAttention for a shared prompt: auto applies the gate, always/never force it",
  ),
  relayMinSharers: z.number().int().min(1).default(4).describe(
    "gate: fewest sequences of a step sharing the prompt for the relay kernels",
  ),
  relayMinPrefix: z.number().int().min(0).default(256).describe(
    "gate: shortest shared prompt (tokens) for the relay kernels",
  ),
  maxPassTokens: z.number().int().min(1).default(4096).describe(
    "most tokens per GPU pass (sizes the activation buffers); larger batches take several passes",
  ),
  subgroups: z.boolean().default(true).describe(
    "reduce with subgroup operations where the device offers them (checked at start)",
  ),
  decodeAhead: z.number().int().min(0).max(64).default(8).describe(
    "greedy tokens decoded ahead per sequence in one submission and read-back (0: off)",
  ),
  decodeAheadMaxSeqs: z.number().int().min(1).max(256).default(64).describe(
    "decode ahead only in passes with at most this many greedy sequences",
  ),
});

/** Counters of a webgpu executor, for benchmarks and tests. */
export interface WebGpuStats {
  /** GPU read-backs so far (at most one per forward pass). */
  readbacks: number;
  /** Tokens answered from decoding ahead, with no GPU work in their step. */
  aheadTokens: number;
}

/** The webgpu executor, with its counters. */
export interface WebGpuExecutor extends Executor {
  /** Counters so far. */
  stats(): WebGpuStats;
}

/** Build the executor: open the device, upload the weights, compile the kernels. */
async function create(
  opts: z.output<typeof options>,
  ctx: PluginContext,
): Promise<WebGpuExecutor> {
  const config = ctx.model.config;
  for (const [name, value] of [["dim", config.dim], ["hiddenDim", config.hiddenDim]] as const) {
    if (value % 4 !== 0) {
      throw new UsageError(`executor webgpu: model ${name} ${value} is not a multiple of 4`);
    }
  }
  if (config.headDim % 4 !== 0 || (config.nHeads * config.headDim) % 4 !== 0) {
    throw new UsageError(`executor webgpu: head width ${config.headDim} is not a multiple of 4`);
  }
  const gpu = await openGpu();
  // auto: f16 storage where shader-f16 is offered, except for f32 models on a fallback
  // (software) adapter, where exactness against the reference matters more than speed.
  const type: WeightType = opts.weights === "auto"
    ? (gpu.info.f16 && (ctx.model.dtype !== "f32" || !gpu.info.isFallback) ? "f16" : "f32")
    : opts.weights;
  const weights = await ctx.model.weights();
  const maxPositions = Math.max(ctx.limits.maxModelLen, 1);
  // Activation buffers are sized for a capped pass; larger batches run in several passes.
  const maxBind = gpu.info.maxStorageBufferBindingSize;
  const widest = Math.max(
    2 * config.hiddenDim,
    (config.nHeads + 2 * config.nKvHeads) * config.headDim,
    config.nHeads * (config.headDim + 1),
  );
  const capTokens = Math.max(
    1,
    Math.min(ctx.limits.maxBatchTokens, opts.maxPassTokens, Math.floor(maxBind / (4 * widest))),
  );
  const capSeqs = Math.max(
    1,
    Math.min(ctx.limits.maxBatchSeqs, capTokens, 256, Math.floor(maxBind / (4 * config.vocabSize))),
  );
  // Decoding ahead returns tokens only, so it is off when every row's logits are kept.
  const aheadDepth = opts.keepLogits ? 0 : opts.decodeAhead;
  const aheadSeqs = Math.min(opts.decodeAheadMaxSeqs, capSeqs);
  const ahead = aheadDepth > 0
    ? new AheadCache(aheadDepth, aheadSeqs, ctx.kv.blockSize, maxPositions, ctx.kv.numBlocks)
    : undefined;
  const runner = await GpuRunner.create(
    gpu,
    config,
    weights,
    {
      maxTokens: capTokens,
      maxSeqs: capSeqs,
      maxPositions,
      numBlocks: ctx.kv.numBlocks,
      blockSize: ctx.kv.blockSize,
      matvecMaxRows: opts.matvecMaxRows,
      scratchBlocks: AheadCache.scratchBlocks(aheadDepth, aheadSeqs, ctx.kv.blockSize),
    },
    type,
    opts.subgroups,
  );
  // Decoding ahead weighs a sub-step against this (see AheadCache.passCost).
  const floor = ahead ? await runner.readbackFloor() : 0;
  ctx.log(
    `${gpu.info.description}${
      gpu.info.isFallback ? " (fallback adapter)" : ""
    }; weights ${type}; ` +
      `shader-f16 ${gpu.info.f16 ? "on" : "off"}, subgroups ${gpu.info.subgroups ? "on" : "off"} ` +
      `(${runner.subgroups ? "used" : "not used"})`,
  );

  /** The token sampled for sequence `s` from entry `k` of a result, at output `index`. */
  const pick = (
    res: RunnerResult,
    k: number,
    s: BatchSequence,
    index: number,
  ): { token: number; logprob?: TokenLogprob } => {
    const c = res.candidates[k];
    const l = res.logits[k];
    if (c) return { token: sampleTopK(c.ids, c.logits, s.sampling, index) };
    if (l && (s.sampling.temperature > 0 || s.sampling.logprobs >= 0)) {
      return sampleToken(l, s.sampling, index);
    }
    return { token: res.greedy[k] };
  };

  /**
   * A step with drafts to verify (speculative decoding). A drafted sequence runs as one
   * row per fed token, each sampling, with the same block table: the pass writes every
   * row's KV before any attention reads it, so each row sees the ones before it, as a
   * prompt chunk does. No decoding ahead in such a step.
   */
  const verify = async (batch: Batch, seqs: RunnerSequence[], relayLen: number) => {
    const rows: RunnerSequence[] = [];
    const owner: [number, number][] = []; // row -> [sequence, output offset]
    batch.sequences.forEach((s, i) => {
      ahead?.drop(s.id);
      if (!s.drafts) {
        rows.push(seqs[i]);
        owner.push([i, 0]);
        return;
      }
      for (let j = 0; j <= s.drafts; j++) {
        rows.push({ ...seqs[i], tokens: [s.tokens[j]], startPos: s.startPos + j });
        owner.push([i, j]);
      }
    });
    const res = await runPasses(runner, rows, relayLen, capTokens, capSeqs);
    const n = batch.sequences.length;
    const tokens = new Int32Array(n).fill(-1);
    const verified: StepOutput["verified"] = new Array(n);
    const logprobs: (TokenLogprob | undefined)[] = new Array(n);
    let anyLogprobs = false;
    rows.forEach((_, k) => {
      const [i, j] = owner[k];
      const s = batch.sequences[i];
      if (!s.sample) return;
      const sampled = pick(res, k, s, s.outputIndex + j);
      if (s.drafts) (verified[i] ??= new Int32Array(s.drafts + 1))[j] = sampled.token;
      if (j > 0) return;
      tokens[i] = sampled.token;
      if (sampled.logprob) {
        logprobs[i] = sampled.logprob;
        anyLogprobs = true;
      }
    });
    const out: StepOutput = { tokens, verified };
    if (anyLogprobs) out.logprobs = logprobs;
    return out;
  };

  return {
    simulated: false,
    relay: true,
    verify: true,
    async run(input: Batch): Promise<StepOutput> {
      const batch = input as RelayBatch;
      const relay = batch.relay;
      const prefixed = relay ? batch.sequences.filter((s) => s.prefixed).length : 0;
      if (relay && prefixed > 0 && runner.sharedId !== relay.id) {
        runner.fillShared(relay.id, relay.tokens);
      }
      const len = relay && prefixed > 0 ? relay.tokens.length : 0;
      const relayOn = len > 0 && runner.relayKernels && (opts.relay === "always" ||
        (opts.relay === "auto" &&
          useRelay(prefixed, len, {
            minSharers: opts.relayMinSharers,
            minPrefix: opts.relayMinPrefix,
          })));
      const seqs: RunnerSequence[] = batch.sequences.map((s) => {
        const topK = s.sample ? deviceTopK(s.sampling, config.vocabSize) : 0;
        const hostSampled = topK === 0 &&
          (s.sampling.temperature > 0 || s.sampling.logprobs >= 0);
        return {
          tokens: s.tokens,
          startPos: s.startPos,
          blockTable: s.blockTable,
          prefixLen: s.prefixed ? len : 0,
          mode: s.prefixed && len > 0 ? (relayOn ? 1 : 2) : 0,
          sample: s.sample,
          wantLogits: s.sample && (opts.keepLogits || hostSampled),
          topK,
        };
      });
      if (batch.sequences.some((s) => s.drafts)) {
        return await verify(batch, seqs, relayOn ? len : 0);
      }
      const tokens = new Int32Array(batch.sequences.length).fill(-1);
      // Answer what was decoded ahead; the rest runs on the GPU. The greedy sequences
      // decode ahead in step, as one group: when a member's chain ends or breaks, all of
      // them start a new plan together (so that later steps need no GPU work at all);
      // sequences that joined meanwhile run step by step until then, and join the group.
      const query = (i: number) => ({ id: batch.sequences[i].id, ...seqs[i] });
      let members = 0;
      let broken = false;
      if (ahead) {
        batch.sequences.forEach((s, i) => {
          if (!greedy(s) || !ahead.has(s.id)) return;
          members++;
          if (!ahead.covers(query(i))) broken = true;
        });
      }
      const replan = ahead !== undefined && (broken || members === 0);
      const pending: number[] = [];
      batch.sequences.forEach((s, i) => {
        const t = ahead && greedy(s) && !replan ? ahead.serve(query(i), batch.step) : undefined;
        if (t === undefined) {
          ahead?.drop(s.id);
          pending.push(i);
        } else tokens[i] = t;
      });
      if (ahead) {
        const copies = ahead.takeCopies();
        runner.copyBlocks(copies.from, copies.to);
        ahead.sweep(batch.step);
      }
      if (pending.length === 0) return { tokens };
      const sub = pending.map((i) => seqs[i]);
      const subTokens = sub.reduce((a, s) => a + s.tokens.length, 0);
      const going = replan && subTokens <= capTokens && sub.length <= capSeqs
        ? pending.flatMap((i, k) => greedy(batch.sequences[i]) ? [k] : [])
        : [];
      const plan = going.length > 0
        ? ahead!.plan(
          going.map((k) => {
            const s = batch.sequences[pending[k]];
            return {
              id: s.id,
              ...sub[k],
              remaining: s.sampling.maxTokens - s.outputIndex - 1,
            };
          }),
          batch.step,
        )
        : undefined;
      const started = performance.now();
      const res = plan
        ? await runner.run(sub, relayOn ? len : 0, 1, {
          steps: plan.steps,
          seqs: going,
          tables: plan.tables,
        })
        : await runPasses(runner, sub, relayOn ? len : 0, capTokens, capSeqs);
      const wall = (performance.now() - started) / 1000;
      ahead?.passCost(floor, Math.max(0, wall - floor) / (1 + (plan?.steps ?? 0)));
      if (plan) {
        ahead!.record(
          going.map((k) => batch.sequences[pending[k]].id),
          going.map((k) => res.greedy[k]),
          res.ahead,
        );
      }
      const logprobs: (TokenLogprob | undefined)[] = new Array(batch.sequences.length);
      const logits: (Float32Array | undefined)[] = new Array(batch.sequences.length);
      let anyLogprobs = false;
      pending.forEach((i, k) => {
        const s = batch.sequences[i];
        logits[i] = res.logits[k];
        if (!s.sample) return;
        const sampled = pick(res, k, s, s.outputIndex);
        tokens[i] = sampled.token;
        if (sampled.logprob) {
          logprobs[i] = sampled.logprob;
          anyLogprobs = true;
        }
      });
      const out: StepOutput = { tokens };
      if (anyLogprobs) out.logprobs = logprobs;
      if (opts.keepLogits) out.logits = logits;
      return out;
    },
    stats: () => ({ readbacks: runner.readbacks, aheadTokens: ahead?.hits ?? 0 }),
    close(): void {
      runner.destroy();
      gpu.device.destroy();
    },
  };
}

/** Whether a sequence samples greedily with nothing else to report (it may decode ahead). */
function greedy(s: BatchSequence): boolean {
  return s.sample && s.sampling.temperature === 0 && s.sampling.logprobs < 0;
}

/**
 * The k to select on the GPU for a sequence sampling with `sampling` (0: none). Top-k
 * rows that also want log-probabilities need the whole row (the log-softmax's
 * normaliser), as do k above {@link TOPK_MAX}.
 */
function deviceTopK(sampling: SamplingParams, vocab: number): number {
  const k = sampling.topK;
  const usable = sampling.temperature > 0 && sampling.logprobs < 0 && k > 0 && k < vocab &&
    k <= TOPK_MAX;
  return usable ? k : 0;
}

/**
 * Run `seqs` in as few passes as fit the runner's buffers (one in the usual case): whole
 * sequences are grouped; a sequence longer than a pass is cut into pieces, and only its
 * last piece samples. Each pass that samples reads back once.
 */
async function runPasses(
  runner: GpuRunner,
  seqs: RunnerSequence[],
  relayLen: number,
  capTokens: number,
  capSeqs: number,
): Promise<RunnerResult> {
  let total = 0;
  for (const s of seqs) total += s.tokens.length;
  if (total <= capTokens && seqs.length <= capSeqs) return await runner.run(seqs, relayLen);
  const greedy = new Int32Array(seqs.length).fill(-1);
  const logits: (Float32Array | undefined)[] = new Array(seqs.length);
  const candidates: (TopKCandidates | undefined)[] = new Array(seqs.length);
  let group: RunnerSequence[] = [];
  let owners: number[] = [];
  let tokens = 0;
  const flush = async () => {
    if (group.length === 0) return;
    const res = await runner.run(group, relayLen);
    owners.forEach((i, k) => {
      if (!group[k].sample) return;
      greedy[i] = res.greedy[k];
      logits[i] = res.logits[k];
      candidates[i] = res.candidates[k];
    });
    group = [];
    owners = [];
    tokens = 0;
  };
  for (const [i, s] of seqs.entries()) {
    for (let at = 0; at < s.tokens.length || (at === 0 && s.tokens.length === 0);) {
      if (tokens === capTokens || group.length === capSeqs) await flush();
      const n = Math.min(s.tokens.length - at, capTokens - tokens);
      const last = at + n === s.tokens.length;
      group.push({
        ...s,
        tokens: s.tokens.slice(at, at + n),
        startPos: s.startPos + at,
        sample: s.sample && last,
        wantLogits: s.wantLogits && last,
      });
      owners.push(i);
      tokens += n;
      at += n;
      if (n === 0) break;
    }
  }
  await flush();
  return { greedy, logits, candidates, ahead: new Int32Array(0) };
}

/** The `webgpu` executor plugin (slot `executor`). */
export const webgpuExecutor: Plugin<"executor", WebGpuOptions> = definePlugin({
  name: "webgpu",
  slot: "executor",
  description: "WGSL forward pass on a WebGPU adapter; one read-back per step.",
  options,
  create,
});

export default webgpuExecutor;
