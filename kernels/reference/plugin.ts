/**
 * The `reference` executor: plain TypeScript, f32, one forward pass per batch over a
 * paged KV store, then sampling. The oracle every other executor is tested against.
 *
 * @module
 */

import { z } from "zod";
import { definePlugin, type Plugin } from "../../plugins/define.ts";
import type { Executor, PluginContext } from "../../core/slots.ts";
import type { Batch, StepOutput, TokenLogprob } from "../../core/types.ts";
import { GREEDY, sampleToken } from "../../core/sampling.ts";
import { PagedKvStore } from "./kv_store.ts";
import { forward, type SharedKv } from "./forward.ts";

/** Options of the reference executor. */
const options = z.object({
  keepLogits: z.boolean().default(false).describe(
    "return each sampling sequence's full logits (for comparing executors)",
  ),
});

/** Build the executor: loads the weights once and allocates the KV pool. */
async function create(
  opts: z.output<typeof options>,
  ctx: PluginContext,
): Promise<Executor> {
  const config = ctx.model.config;
  const weights = await ctx.model.weights();
  const kv = new PagedKvStore(config, ctx.kv.numBlocks, ctx.kv.blockSize);
  // RelayAttention: the shared prompt's KV, computed once per prompt id.
  let shared: (SharedKv & { id: string }) | undefined;
  const fillShared = (id: string, tokens: readonly number[]) => {
    const store = new PagedKvStore(config, 1, tokens.length); // one block: contiguous
    const sequences = [{
      id,
      tokens: [...tokens],
      startPos: 0,
      blockTable: [0],
      sample: false,
      sampling: GREEDY,
      outputIndex: 0,
    }];
    forward(weights, config, store, {
      step: 0,
      sequences,
      numTokens: tokens.length,
      numDecodes: 0,
    });
    shared = { id, length: tokens.length, k: store.k, v: store.v };
  };
  // Host swap space: one K and one V copy per layer for each slot in use.
  const host = new Map<number, { k: Float32Array[]; v: Float32Array[] }>();
  const blockFloats = ctx.kv.blockSize * kv.kvDim;
  const blockCopy = (from: Float32Array, to: Float32Array, src: number, dst: number) =>
    to.set(from.subarray(src * blockFloats, (src + 1) * blockFloats), dst * blockFloats);
  return {
    simulated: false,
    relay: true,
    swap(out, into): void {
      for (const { block, slot } of out) {
        const saved = {
          k: kv.k.map(() => new Float32Array(blockFloats)),
          v: kv.v.map(() => new Float32Array(blockFloats)),
        };
        for (let l = 0; l < kv.k.length; l++) {
          blockCopy(kv.k[l], saved.k[l], block, 0);
          blockCopy(kv.v[l], saved.v[l], block, 0);
        }
        host.set(slot, saved);
      }
      for (const { block, slot } of into) {
        const saved = host.get(slot);
        if (!saved) throw new Error(`host swap slot ${slot} holds nothing`);
        for (let l = 0; l < kv.k.length; l++) {
          blockCopy(saved.k[l], kv.k[l], 0, block);
          blockCopy(saved.v[l], kv.v[l], 0, block);
        }
        host.delete(slot);
      }
    },
    run(batch: Batch): StepOutput {
      if (batch.relay && shared?.id !== batch.relay.id) {
        fillShared(batch.relay.id, batch.relay.tokens);
      }
      const logits = forward(weights, config, kv, batch, shared);
      const tokens = new Int32Array(batch.sequences.length).fill(-1);
      const logprobs: (TokenLogprob | undefined)[] = new Array(batch.sequences.length);
      let anyLogprobs = false;
      batch.sequences.forEach((seq, s) => {
        const l = logits[s];
        if (l === undefined) return;
        const sampled = sampleToken(l, seq.sampling, seq.outputIndex);
        tokens[s] = sampled.token;
        logprobs[s] = sampled.logprob;
        if (sampled.logprob) anyLogprobs = true;
      });
      const out: StepOutput = { tokens };
      if (anyLogprobs) out.logprobs = logprobs;
      if (opts.keepLogits) out.logits = logits;
      return out;
    },
  };
}

/** The `reference` executor plugin (slot `executor`). */
export const referenceExecutor: Plugin<"executor", typeof options> = definePlugin({
  name: "reference",
  slot: "executor",
  description: "Plain TypeScript f32 forward pass over the paged KV cache (the oracle).",
  options,
  create,
});

export default referenceExecutor;
