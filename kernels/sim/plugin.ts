/**
 * The `sim` executor: no tensors. Each step's duration comes from a cost model (a GPU
 * profile with a model profile, or a fitted `cpu` profile) and each sampling sequence's
 * next token from the request's hidden output length: the model's EOS once it is
 * reached, some other token before. A request with no hidden length (a real client on a
 * server running a simulated GPU) gets a seeded length drawn on its first token.
 *
 * With `realtime`, each step also sleeps for its predicted duration, so a server can run
 * a simulated GPU on the wall clock.
 *
 * @module
 */

import { z } from "zod";
import { definePlugin, type Plugin } from "../../plugins/define.ts";
import type { CostModel, Executor, PluginContext } from "../../core/slots.ts";
import type { Batch, StepOutput } from "../../core/types.ts";
import type { ModelConfig } from "../../core/model/types.ts";
import { UsageError } from "../../core/errors.ts";
import { addVerify, GpuCostModel, LinearCostModel, type StepShape } from "./cost_model.ts";
import { gpuProfile, type HardwareProfile } from "./hardware.ts";
import { findModelProfile, type ModelProfile, modelProfile, profileFromConfig } from "./models.ts";
import { readLinearProfile } from "./profile_file.ts";

const schema = z.object({
  gpu: z.string().default("a100-80g").describe(
    "GPU profile: a100-80g, a100-pcie-80g, h100, h200, a40, or cpu (a fitted profile)",
  ),
  model: z.string().default("").describe(
    "model profile for the cost model (default: the served model's dimensions)",
  ),
  tp: z.number().int().min(1).max(64).default(1).describe("tensor-parallel degree"),
  realtime: z.boolean().default(false).describe("sleep for each step's predicted duration"),
  profileFile: z.string().default("bench/results/cpu-profile.json").describe(
    "fitted profile read when gpu is cpu (written by `main.ts profile`)",
  ),
  stepOverhead: z.number().min(0).max(10).optional().describe(
    "override the GPU profile's software time per step, seconds",
  ),
  seqOverhead: z.number().min(0).max(1).optional().describe(
    "override the GPU profile's software time per sequence, seconds",
  ),
  meanOutput: z.number().min(1).max(1e6).default(256).describe(
    "mean output length drawn for requests without a hidden length",
  ),
});

/** Options schema of the `sim` executor. */
export type SimOptionsSchema = typeof schema;
/** Options of the `sim` executor, defaults filled in. */
export type SimOptions = z.output<SimOptionsSchema>;

/** The cost model the options describe (shared by the plugin and the simulation driver). */
export async function simCostModel(
  opts: Partial<SimOptions>,
  served?: { name: string; config: PluginContext["model"]["config"] },
): Promise<CostModel> {
  const gpu = opts.gpu ?? "a100-80g";
  if (gpu === "cpu") {
    return new LinearCostModel(
      await readLinearProfile(opts.profileFile ?? "bench/results/cpu-profile.json"),
    );
  }
  let hw: HardwareProfile = gpuProfile(gpu);
  if (opts.stepOverhead !== undefined || opts.seqOverhead !== undefined) {
    hw = {
      ...hw,
      stepOverhead: opts.stepOverhead ?? hw.stepOverhead,
      seqOverhead: opts.seqOverhead ?? hw.seqOverhead,
    };
  }
  return new GpuCostModel({
    hardware: hw,
    model: resolveModel(opts.model ?? "", served),
    tp: opts.tp ?? 1,
  });
}

function resolveModel(
  name: string,
  served?: { name: string; config: PluginContext["model"]["config"] },
): ModelProfile {
  if (name) return modelProfile(name);
  if (served) return findModelProfile(served.name) ?? profileFromConfig(served.name, served.config);
  throw new UsageError("the sim executor needs a model profile (--executor.model NAME)", "model");
}

/** Shape of a batch as the cost model reads it. */
export function batchShape(batch: Batch): StepShape {
  let prefillTokens = 0, prefillContext = 0, prefillPairs = 0, prefillSeqs = 0;
  let decodes = 0, decodeContext = 0;
  // RelayAttention: prefixed sequences read the shared prompt's KV once for the whole step
  // instead of once each (relay spec, section 1(d)); the arithmetic stays per sequence.
  const shared = batch.relay?.tokens.length ?? 0;
  let sharedRead = false;
  const verify: StepShape = { prefillTokens: 0, prefillContext: 0, decodes: 0, decodeContext: 0 };
  for (const s of batch.sequences) {
    const n = s.tokens.length;
    const own = s.prefixed ? s.startPos - shared : s.startPos;
    if (s.prefixed) sharedRead = true;
    if (s.drafts) addVerify(verify, own, s.drafts);
    else if (n === 1) {
      decodes++;
      decodeContext += own;
    } else {
      prefillTokens += n;
      prefillContext += own;
      prefillPairs += n * (s.startPos + n / 2);
      prefillSeqs++;
    }
  }
  if (sharedRead) decodeContext += shared;
  return {
    prefillTokens: prefillTokens + verify.prefillTokens,
    prefillContext,
    decodes: decodes + verify.decodes,
    decodeContext: decodeContext + verify.decodeContext,
    prefillPairs: prefillPairs + (verify.prefillPairs ?? 0),
    prefillSeqs,
  };
}

function hashId(id: string, seed: number): number {
  let h = (seed ^ 0x811c9dc5) >>> 0;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0x5bd1e995) >>> 0;
  return (h ^ (h >>> 15)) >>> 0;
}

/**
 * The tokens a simulated request generates: `other` (neither EOS nor a low special id) at
 * every output index but the last, which is EOS. `token(outputIndex, length)` gives one.
 */
export function simulatedTokens(cfg: ModelConfig): {
  other: number;
  eos: number;
  token(outputIndex: number, length: number): number;
} {
  const eos = cfg.eosTokenIds.length > 0 ? cfg.eosTokenIds[0] : -1;
  let other = Math.min(cfg.vocabSize - 1, 16);
  while (cfg.eosTokenIds.includes(other)) other = (other + 1) % cfg.vocabSize;
  return {
    other,
    eos,
    token: (i, length) => (i + 1 >= length && eos >= 0 ? eos : other),
  };
}

async function create(opts: SimOptions, ctx: PluginContext): Promise<Executor> {
  const cost = await simCostModel(opts, ctx.model);
  const sim = simulatedTokens(ctx.model.config);
  const drawn = new Map<string, number>();
  /** Output length of a request without a hidden one. */
  const lengthOf = (id: string): number => {
    let n = drawn.get(id);
    if (n === undefined) {
      // Exponential with the configured mean, seeded by the request id and engine seed.
      const u = (hashId(id, ctx.seed) + 0.5) / 4294967296;
      n = Math.max(1, Math.round(-Math.log(u) * opts.meanOutput));
      drawn.set(id, n);
    }
    return n;
  };
  let tokenBuffer = new Int32Array(256);
  return {
    simulated: true,
    relay: true,
    verify: true,
    costModel: cost,
    run(batch: Batch): StepOutput | Promise<StepOutput> {
      const seqs = batch.sequences;
      // One buffer for every step (a fresh typed array per step costs an allocation outside
      // the heap): the engine reads the tokens before the next step.
      if (tokenBuffer.length < seqs.length) tokenBuffer = new Int32Array(2 * seqs.length);
      const tokens = tokenBuffer.subarray(0, seqs.length);
      let verified: StepOutput["verified"];
      for (let i = 0; i < seqs.length; i++) {
        const s = seqs[i];
        if (!s.sample) {
          tokens[i] = -1;
          continue;
        }
        const len = s.hidden ? s.hidden.outputLength : lengthOf(s.id);
        // A drawn length is a function of the id: forgetting it at the end is safe.
        if (!s.hidden && s.outputIndex + (s.drafts ?? 0) + 1 >= len) drawn.delete(s.id);
        tokens[i] = sim.token(s.outputIndex, len);
        if (s.drafts) {
          verified ??= new Array(seqs.length);
          const v = new Int32Array(s.drafts + 1);
          for (let j = 0; j <= s.drafts; j++) v[j] = sim.token(s.outputIndex + j, len);
          verified[i] = v;
        }
      }
      const duration = cost.stepTime(batchShape(batch));
      const out: StepOutput = { tokens, duration };
      if (verified) out.verified = verified;
      if (!opts.realtime) return out;
      return new Promise((r) => setTimeout(() => r(out), duration * 1000));
    },
    // Swapping: each block's KV crosses the host link (a fitted CPU profile has no link).
    swap(out, into): number {
      const tokens = (out.length + into.length) * ctx.kv.blockSize;
      return cost instanceof GpuCostModel ? cost.swapTime(tokens) : 0;
    },
    onFinish(req): void {
      drawn.delete(req.id);
    },
  };
}

/** The `sim` executor plugin (slot `executor`). */
export const simExecutor: Plugin<"executor", SimOptionsSchema> = definePlugin({
  name: "sim",
  slot: "executor",
  description: "Simulated GPU: step time from a cost model, tokens from hidden output lengths.",
  options: schema,
  create,
});

export default simExecutor;
