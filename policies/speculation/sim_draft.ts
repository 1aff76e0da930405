/**
 * `sim-draft` speculation plugin: a draft model on the simulated GPU. It proposes `k`
 * tokens per decode, each the target's own next token with probability `acceptance`
 * (independently, seeded by request and position: a draft's accepted length is then
 * geometric, the i.i.d. model SmartSpec assumes), and charges `k` draft forward passes,
 * each `draft-cost` times the target's decode step for the same batch.
 *
 * It reads the workload's hidden output lengths to know the target's tokens, so it runs
 * only with a simulated executor.
 *
 * @module
 */

import { z } from "zod";
import { definePlugin, type Plugin } from "../../plugins/define.ts";
import type { CostModel, Oracle, PluginContext, Speculator } from "../../core/slots.ts";
import type { RequestView } from "../../core/types.ts";
import { UsageError } from "../../core/errors.ts";
import { simulatedTokens } from "../../kernels/sim/plugin.ts";

/** Settings of a {@link SimDraftModel}. */
export interface SimDraftSettings {
  /** Probability that a draft token is the target's. */
  acceptance: number;
  /** Seconds of one draft forward pass as a fraction of the target's decode step. */
  draftCost: number;
}

/** A simulated draft model: drafts from hidden lengths, time from the target's cost model. */
export class SimDraftModel {
  readonly #oracle: Oracle;
  readonly #cost: CostModel;
  readonly #sim: ReturnType<typeof simulatedTokens>;
  readonly #seed: number;

  /** For the engine of `ctx`, which must run a simulated executor with a cost model. */
  constructor(readonly settings: SimDraftSettings, ctx: PluginContext, plugin: string) {
    if (!ctx.oracle || !ctx.costModel) {
      throw new UsageError(
        `${plugin} simulates a draft model: it needs a simulated executor (--executor sim)`,
        "--speculation",
      );
    }
    this.#oracle = ctx.oracle;
    this.#cost = ctx.costModel;
    this.#sim = simulatedTokens(ctx.model.config);
    this.#seed = ctx.seed;
  }

  /** `k` draft tokens for `req`. */
  draft(req: RequestView, k: number): number[] {
    const sim = this.#sim;
    const length = this.#oracle.outputLength(req.id) ?? Infinity;
    const out = new Array<number>(k);
    const first = req.outputTokens.length;
    for (let j = 0; j < k; j++) {
      const right = sim.token(first + j, length);
      const u = unit(this.#seed, req.id, first + j);
      out[j] = u < this.settings.acceptance
        ? right
        : right === sim.other
        ? sim.other + 1
        : sim.other;
    }
    return out;
  }

  /** Seconds of `k` draft passes over `decodes` sequences reading `context` tokens of KV. */
  seconds(decodes: number, context: number, k: number): number {
    if (k === 0 || decodes === 0) return 0;
    const step = this.#cost.stepTime({
      prefillTokens: 0,
      prefillContext: 0,
      decodes,
      decodeContext: context,
    });
    return k * this.settings.draftCost * step;
  }
}

/** A uniform draw in [0, 1) from (seed, request, position). */
function unit(seed: number, id: string, index: number): number {
  let h = (seed ^ 0x811c9dc5) >>> 0;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ (index + 0x9e3779b9), 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return ((h ^ (h >>> 16)) >>> 0) / 4294967296;
}

const options = z.object({
  k: z.number().int().min(1).max(64).default(4).describe("draft tokens per step"),
  acceptance: z.number().min(0).max(1).default(0.7).describe(
    "probability that a draft token is the target's",
  ),
  draftCost: z.number().min(0).default(0.1).describe(
    "one draft pass, as a fraction of the target's decode step",
  ),
});

/** The `sim-draft` plugin. */
export const simDraft: Plugin<"speculation", typeof options> = definePlugin({
  name: "sim-draft",
  slot: "speculation",
  description: "a simulated draft model: k tokens a step, each right with a set probability",
  options,
  create(opts, ctx): Speculator {
    const model = new SimDraftModel(opts, ctx, "sim-draft");
    return {
      propose(_view, decodes) {
        let context = 0;
        for (const r of decodes) context += r.numTokens;
        return {
          drafts: decodes.map((r) => model.draft(r, opts.k)),
          seconds: model.seconds(decodes.length, context, opts.k),
        };
      },
    };
  },
});
