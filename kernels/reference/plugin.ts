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
import { HostSwapSpace } from "../host_swap.ts";

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
  const host = new HostSwapSpace([...kv.k, ...kv.v], ctx.kv.blockSize * kv.kvDim);
  return {
    simulated: false,
    relay: true,
    verify: true,
    swap: (out, into) => host.swap(out, into),
    run(batch: Batch): StepOutput {
      if (batch.relay && shared?.id !== batch.relay.id) {
        fillShared(batch.relay.id, batch.relay.tokens);
      }
      const logits = forward(weights, config, kv, batch, shared);
      const tokens = new Int32Array(batch.sequences.length).fill(-1);
      const logprobs: (TokenLogprob | undefined)[] = new Array(batch.sequences.length);
      let anyLogprobs = false;
      let verified: StepOutput["verified"];
      const vocab = config.vocabSize;
      batch.sequences.forEach((seq, s) => {
        let l = logits[s];
        if (l === undefined) return;
        if (seq.drafts) {
          // Speculative decoding: a token after each draft, as decoding one by one samples.
          const v = new Int32Array(seq.drafts + 1);
          for (let j = 0; j <= seq.drafts; j++) {
            const row = l.subarray(j * vocab, (j + 1) * vocab);
            v[j] = sampleToken(row, seq.sampling, seq.outputIndex + j).token;
          }
          (verified ??= new Array(batch.sequences.length))[s] = v;
          logits[s] = l = l.subarray(0, vocab);
          tokens[s] = v[0];
          return;
        }
        const sampled = sampleToken(l, seq.sampling, seq.outputIndex);
        tokens[s] = sampled.token;
        logprobs[s] = sampled.logprob;
        if (sampled.logprob) anyLogprobs = true;
      });
      const out: StepOutput = { tokens };
      if (verified) out.verified = verified;
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
