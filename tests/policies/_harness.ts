// Test helpers for the policy tests: an executor that ends each request at its hidden
// length (optionally with a cost model), and a driver that runs a workload to the end.
import { z } from "zod";
import { Engine } from "../../core/engine.ts";
import { VirtualClock } from "../../core/clock.ts";
import { presetModel } from "../../core/model/load.ts";
import { definePlugin, type Plugin } from "../../plugins/define.ts";
import { builtinRegistry } from "../../plugins/builtins.ts";
import type { CostModel } from "../../core/slots.ts";
import type { Batch, RequestEvent } from "../../core/types.ts";
import type { StepReport } from "../../core/engine.ts";

/** One sequence of a recorded batch. */
export interface SeqRecord {
  id: string;
  tokens: number;
  /** A decode: one token after at least one output. */
  decode: boolean;
}

/** A simulated executor: EOS at the hidden length, `cost` for durations. */
export function lengthExecutor(
  record: SeqRecord[][],
  cost?: CostModel,
  simulated = true,
): Plugin<"executor"> {
  return definePlugin({
    name: "lengths",
    slot: "executor",
    options: z.object({}),
    create: (_o, ctx) => ({
      simulated,
      costModel: cost,
      run: (batch: Batch) => {
        record.push(batch.sequences.map((s) => ({
          id: s.id,
          tokens: s.tokens.length,
          decode: s.tokens.length === 1 && s.outputIndex > 0,
        })));
        const eos = ctx.model.config.eosTokenIds[0];
        return {
          tokens: batch.sequences.map((s) =>
            !s.sample ? -1 : s.hidden && s.outputIndex + 1 >= s.hidden.outputLength ? eos : 20
          ),
          duration: cost
            ? cost.stepTime({
              prefillTokens: batch.numTokens - batch.numDecodes,
              prefillContext: 0,
              decodes: batch.numDecodes,
              decodeContext: 0,
            })
            : 0.01 + 1e-4 * batch.numTokens,
        };
      },
    }),
  });
}

/** A request of a test workload. */
export interface TestRequest {
  id?: string;
  prompt: number | number[];
  output: number;
  arrival?: number;
  maxTokens?: number;
}

/** What a run produced. */
export interface RunResult {
  finishes: Map<string, Extract<RequestEvent, { type: "finish" }>>;
  firstToken: Map<string, number>;
  batches: SeqRecord[][];
  steps: StepReport[];
  preemptions: number;
  /** Running count after each step. */
  running: number[];
  engine: Engine;
}

/** Run `requests` to the end on a virtual clock. */
export async function runWorkload(o: {
  plugins: Record<string, { name: string; options?: Record<string, unknown> }>;
  requests: TestRequest[];
  numBlocks?: number;
  blockSize?: number;
  maxModelLen?: number;
  cost?: CostModel;
  simulated?: boolean;
  maxSteps?: number;
  extra?: Plugin[];
  seed?: number;
}): Promise<RunResult> {
  const batches: SeqRecord[][] = [];
  const registry = builtinRegistry();
  registry.register(lengthExecutor(batches, o.cost, o.simulated ?? true));
  for (const p of o.extra ?? []) registry.register(p, { replace: true });
  const clock = new VirtualClock();
  const engine = await Engine.create({
    model: presetModel("tiny"),
    registry,
    clock,
    blockSize: o.blockSize ?? 16,
    numBlocks: o.numBlocks ?? 256,
    maxModelLen: o.maxModelLen ?? 4096,
    seed: o.seed ?? 0,
    detokenize: false,
    log: () => {},
    plugins: { executor: { name: "lengths" }, ...o.plugins },
  });
  const finishes = new Map<string, Extract<RequestEvent, { type: "finish" }>>();
  const firstToken = new Map<string, number>();
  const steps: StepReport[] = [];
  const running: number[] = [];
  engine.onStep((r) => {
    steps.push(r);
    running.push(engine.running.length);
  });
  const pending = o.requests.map((r, i) => ({ r, id: r.id ?? `q${i}` }))
    .sort((a, b) => (a.r.arrival ?? 0) - (b.r.arrival ?? 0));
  let next = 0;
  const limit = o.maxSteps ?? 200_000;
  while (next < pending.length || engine.hasWork) {
    if (!engine.hasWork) clock.advanceTo(pending[next].r.arrival ?? 0);
    while (next < pending.length && (pending[next].r.arrival ?? 0) <= clock.now()) {
      const { r, id } = pending[next++];
      const tokens = Array.isArray(r.prompt)
        ? r.prompt
        : Array.from({ length: r.prompt }, (_, k) => 3 + (hashOf(id, k) % 250));
      engine.add({
        id,
        promptTokens: tokens,
        arrivalTime: r.arrival ?? 0,
        hidden: { outputLength: r.output },
        sampling: { maxTokens: r.maxTokens ?? 4000, temperature: 0 },
      }, (ev) => {
        if (ev.type === "finish") finishes.set(id, ev);
        else if (!firstToken.has(id)) firstToken.set(id, ev.time);
      });
    }
    if (engine.hasWork) await engine.step();
    if (steps.length > limit) throw new Error(`no end after ${limit} steps`);
  }
  const preemptions = engine.stats.preemptions;
  return { finishes, firstToken, batches, steps, preemptions, running, engine };
}

/** A seeded uniform integer generator. */
export function lcg(seed: number): (lo: number, hi: number) => number {
  let s = seed >>> 0;
  return (lo, hi) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return lo + Math.floor((s / 4294967296) * (hi - lo + 1));
  };
}

/** A token id made from a request id and a position (distinct prompts, no prefix hits). */
function hashOf(id: string, k: number): number {
  let h = 2166136261 ^ k;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 16777619);
  h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
  return (h ^ (h >>> 12)) >>> 0;
}
