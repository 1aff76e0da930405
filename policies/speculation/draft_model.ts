/**
 * `draft-model` speculation plugin: a smaller model of the same vocabulary drafts `k`
 * tokens greedily for each decode, on its own executor (`reference` or `wasm`) with its own
 * KV pool. Each step it first feeds each request the tokens it has not seen (the last
 * step's accepted tokens and the new one), then drafts one token at a time for all of them
 * together: `k` passes of the draft model per step. What verification accepted is kept in
 * its KV; the positions after are written again next time.
 *
 * ```sh
 * deno run -A main.ts serve --model path/to/SmolLM-360M --executor wasm \
 *   --speculation draft-model --speculation.model path/to/SmolLM-135M
 * ```
 *
 * @module
 */

import { z } from "zod";
import { definePlugin, type Plugin } from "../../plugins/define.ts";
import type { Executor, PluginContext, Speculator } from "../../core/slots.ts";
import type { BatchSequence, RequestView } from "../../core/types.ts";
import { UsageError } from "../../core/errors.ts";
import { loadModel } from "../../core/model/load.ts";
import { GREEDY } from "../../core/sampling.ts";
import { parseOptions } from "../../plugins/options.ts";
import { referenceExecutor } from "../../kernels/reference/plugin.ts";
import { wasmExecutor } from "../../kernels/wasm/plugin.ts";

const options = z.object({
  model: z.string().min(1).describe("draft model: a preset or a Hugging Face folder"),
  executor: z.enum(["wasm", "reference"]).default("wasm").describe("what runs the draft model"),
  k: z.number().int().min(1).max(64).default(4).describe("draft tokens per step"),
  blocks: z.number().int().min(2).default(2048).describe("KV blocks of the draft model"),
});

/** What the plugin keeps per drafting request. */
interface DraftState {
  /** Its blocks in the draft model's pool. */
  blocks: number[];
  /** Positions whose KV in the draft model holds the request's own tokens. */
  valid: number;
  /** The request's length when it was last drafted for. */
  at: number;
}

/** The `draft-model` plugin. */
export const draftModel: Plugin<"speculation", typeof options> = definePlugin({
  name: "draft-model",
  slot: "speculation",
  description: "a smaller model of the same vocabulary drafts k tokens a step",
  options,
  async create(opts, ctx): Promise<Speculator & { close(): Promise<void> }> {
    const model = await loadModel(opts.model, { seed: ctx.seed });
    const target = ctx.model.config;
    if (model.config.vocabSize !== target.vocabSize) {
      throw new UsageError(
        `the draft model ${opts.model} has ${model.config.vocabSize} tokens in its vocabulary; ` +
          `the target has ${target.vocabSize}: they must share one`,
        "--speculation.model",
      );
    }
    const blockSize = ctx.kv.blockSize;
    const maxLen = Math.min(model.config.maxSeqLen, ctx.limits.maxModelLen);
    const draftCtx: PluginContext = {
      model,
      kv: { blockSize, numBlocks: opts.blocks },
      limits: { ...ctx.limits, maxModelLen: maxLen },
      seed: ctx.seed,
      log: (m) => ctx.log(`draft: ${m}`),
    };
    const plugin = opts.executor === "wasm" ? wasmExecutor : referenceExecutor;
    const executor = await plugin.create(parseOptions(plugin, {}) as never, draftCtx) as Executor;
    const free: number[] = [];
    for (let b = opts.blocks - 1; b >= 0; b--) free.push(b);
    const states = new Map<string, DraftState>();

    /** Run one pass of the draft model; the greedy token after each sequence. */
    const pass = (sequences: BatchSequence[]): ArrayLike<number> => {
      let numTokens = 0;
      for (const s of sequences) numTokens += s.tokens.length;
      const out = executor.run({ step: 0, sequences, numTokens, numDecodes: 0 });
      if (out instanceof Promise) throw new Error("the draft executor must answer at once");
      return out.tokens;
    };

    return {
      propose(_view, decodes: readonly RequestView[]) {
        const k = opts.k;
        const drafts: number[][] = decodes.map(() => []);
        const rows: { i: number; st: DraftState; seq: BatchSequence }[] = [];
        let budget = ctx.limits.maxBatchTokens;
        decodes.forEach((r, i) => {
          const n = r.numTokens;
          if (n + k - 1 > maxLen) return;
          let st = states.get(r.id);
          if (!st) states.set(r.id, st = { blocks: [], valid: 0, at: 0 });
          st.valid = Math.min(st.valid, n - 1);
          // A request new to the draft model catches up on its whole context: a few a step.
          if (n - st.valid > budget) return;
          budget -= n - st.valid;
          const need = Math.ceil((n + k - 1) / blockSize);
          if (need - st.blocks.length > free.length) return;
          while (st.blocks.length < need) st.blocks.push(free.pop()!);
          const p = r.promptTokens, o = r.outputTokens;
          const tokens: number[] = [];
          for (let j = st.valid; j < n; j++) tokens.push(j < p.length ? p[j] : o[j - p.length]);
          st.at = n;
          rows.push({
            i,
            st,
            seq: {
              id: r.id,
              tokens,
              startPos: st.valid,
              blockTable: st.blocks,
              sample: true,
              sampling: GREEDY,
              outputIndex: 0,
            },
          });
        });
        if (rows.length === 0) return { drafts };
        // Catch up and draft the first token, then one token at a time.
        let next = pass(rows.map((r) => r.seq));
        for (let j = 0; j < k; j++) {
          rows.forEach((r, x) => drafts[r.i].push(next[x]));
          if (j === k - 1) break;
          for (const r of rows) {
            r.seq.startPos += r.seq.tokens.length;
            r.seq.tokens = [drafts[r.i][j]];
          }
          next = pass(rows.map((r) => r.seq));
        }
        // The catch-up is the request's own tokens; drafts count once verified.
        for (const r of rows) r.st.valid = r.st.at;
        return { drafts };
      },
      onVerified(results) {
        // The draft KV holds the first k - 1 drafts: those accepted are the request's now.
        for (const { id, accepted } of results) {
          const st = states.get(id);
          if (st) st.valid = st.at + Math.min(accepted, opts.k - 1);
        }
      },
      onFinish(req) {
        const st = states.get(req.id);
        if (!st) return;
        for (const b of st.blocks) free.push(b);
        states.delete(req.id);
      },
      async close() {
        await executor.close?.();
      },
    };
  },
});
