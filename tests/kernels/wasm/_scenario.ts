/**
 * Shared by the wasm executor tests: a scripted run of continuous batching (prefill
 * chunks, decodes, a recompute preemption, reused blocks) fed to two executors at once,
 * with both outputs collected per step.
 *
 * @module
 */

import type { Executor, PluginContext } from "../../../core/slots.ts";
import type { Batch, BatchSequence, SamplingParams, StepOutput } from "../../../core/types.ts";
import type { Model } from "../../../core/model/types.ts";

/** Greedy, no log-probabilities. */
export const GREEDY: SamplingParams = {
  temperature: 0,
  topK: 0,
  topP: 1,
  seed: 0,
  maxTokens: 100,
  stopTokenIds: [],
  stop: [],
  ignoreEos: true,
  logprobs: -1,
};

/** A plugin context for `model` with a pool of `numBlocks` blocks of `blockSize`. */
export function context(model: Model, blockSize: number, numBlocks: number): PluginContext {
  return {
    model,
    kv: { blockSize, numBlocks },
    limits: { maxBatchTokens: 4096, maxBatchSeqs: 64, maxModelLen: model.config.maxSeqLen },
    seed: 0,
    log: () => {},
  };
}

/** One step's outputs of the oracle and of the executor under test. */
export interface StepPair {
  /** The batch. */
  batch: Batch;
  /** Oracle output. */
  expected: StepOutput;
  /** Output under test. */
  actual: StepOutput;
}

interface Seq {
  id: string;
  prompt: number[];
  out: number[];
  computed: number; // tokens whose KV is stored
  table: number[];
  sampling: SamplingParams;
}

/**
 * Drive both executors through a fixed schedule: requests `a` (23-token prompt in two
 * chunks), `b` (5 tokens), `c` (7 tokens, arrives later and gets `b`'s freed blocks), with
 * `b` preempted at step 3 and recomputed (prompt plus outputs as one prefill). Tokens fed
 * back are the oracle's, so a difference cannot cascade.
 */
export async function runScenario(
  oracle: Executor,
  subject: Executor,
  blockSize: number,
  numBlocks: number,
  sampling: (id: string) => SamplingParams = () => GREEDY,
  steps = 9,
): Promise<StepPair[]> {
  const free = Array.from({ length: numBlocks }, (_, i) => numBlocks - 1 - i);
  const alloc = (s: Seq, upTo: number) => {
    while (s.table.length * blockSize < upTo) {
      const b = free.pop();
      if (b === undefined) throw new Error("scenario ran out of blocks");
      s.table.push(b);
    }
  };
  const mk = (id: string, n: number, base: number): Seq => ({
    id,
    prompt: Array.from({ length: n }, (_, i) => 3 + ((base + i * 31) % 250)),
    out: [],
    computed: 0,
    table: [],
    sampling: sampling(id),
  });
  const a = mk("a", 23, 7);
  const b = mk("b", 5, 100);
  const c = mk("c", 7, 55);
  const pairs: StepPair[] = [];
  for (let step = 0; step < steps; step++) {
    const chunks: [Seq, number][] = [];
    if (step === 0) chunks.push([a, 10], [b, 5]);
    else if (step === 1) chunks.push([a, 13], [b, 1]);
    else if (step === 2) chunks.push([a, 1], [b, 1]);
    else if (step === 3) {
      // Preempt b (recompute): its blocks go back to the pool, then c takes some.
      free.push(...b.table.reverse());
      b.table = [];
      b.computed = 0;
      chunks.push([c, 7], [a, 1]);
    } else if (step === 4) chunks.push([b, b.prompt.length + b.out.length], [a, 1], [c, 1]);
    else chunks.push([a, 1], [b, 1], [c, 1]);
    const sequences: BatchSequence[] = chunks.map(([s, n]) => {
      const all = [...s.prompt, ...s.out];
      const tokens = all.slice(s.computed, s.computed + n);
      alloc(s, s.computed + n);
      return {
        id: s.id,
        tokens,
        startPos: s.computed,
        blockTable: [...s.table],
        sample: s.computed + n === all.length,
        sampling: s.sampling,
        outputIndex: s.out.length,
      };
    });
    const batch: Batch = {
      step,
      sequences,
      numTokens: sequences.reduce((k, q) => k + q.tokens.length, 0),
      numDecodes: chunks.filter(([s, n]) => n === 1 && s.computed >= s.prompt.length).length,
    };
    const expected = await oracle.run(batch);
    const actual = await subject.run(batch);
    pairs.push({ batch, expected, actual });
    chunks.forEach(([s, n], i) => {
      s.computed += n;
      if (sequences[i].sample) s.out.push(expected.tokens[i]);
    });
  }
  return pairs;
}

/** Largest absolute difference between two logit vectors. */
export function maxAbsDiff(x: Float32Array, y: Float32Array): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  return m;
}

/** Gap between the largest and second largest value. */
export function topGap(x: Float32Array): number {
  let a = -Infinity;
  let b = -Infinity;
  for (const v of x) {
    if (v > a) {
      b = a;
      a = v;
    } else if (v > b) b = v;
  }
  return a - b;
}
