/**
 * Profiling a real executor: run a grid of synthetic batches (prefill chunks at several
 * contexts, decode batches at several contexts, mixed batches) and time each, so a
 * linear profile can be fitted (the `cpu` profile of `main.ts profile`).
 *
 * @module
 */

import type { Executor } from "../../core/slots.ts";
import type { Batch, BatchSequence } from "../../core/types.ts";
import { GREEDY } from "../../core/sampling.ts";
import type { ModelConfig } from "../../core/model/types.ts";
import { batchShape } from "./plugin.ts";
import type { StepSample } from "./fit.ts";

/** Options of {@link profileExecutor}. */
export interface ProfileOptions {
  /** Tokens per KV block the executor was created with. */
  blockSize: number;
  /** Blocks in the executor's pool. */
  numBlocks: number;
  /** Timed runs per shape (fastest kept; default 5). */
  repeats?: number;
  /** Scale of the grid: the largest prefill chunk (default 128). */
  maxChunk?: number;
}

/** The batch shapes profiled: [chunk sizes with start positions], [decode count, context]. */
export function profileGrid(
  maxChunk: number,
): { prefill: [number, number][]; decode: [number, number][]; mixed: [number, number, number][] } {
  const prefill: [number, number][] = [];
  for (let c = 8; c <= maxChunk; c *= 2) {
    for (const p of [0, maxChunk / 2, maxChunk * 1.5]) prefill.push([c, p]);
  }
  const decode: [number, number][] = [];
  for (let b = 1; b <= 16; b *= 2) for (const ctx of [32, 128, 320]) decode.push([b, ctx]);
  const mixed: [number, number, number][] = [[32, 4, 64], [64, 8, 128], [16, 2, 200]];
  return { prefill, decode, mixed };
}

/** Time a grid of synthetic batches on `executor`. */
export async function profileExecutor(
  executor: Executor,
  config: ModelConfig,
  o: ProfileOptions,
): Promise<StepSample[]> {
  const repeats = o.repeats ?? 5;
  const grid = profileGrid(o.maxChunk ?? 128);
  let nextBlock = 0;
  const seq = (id: string, start: number, n: number): BatchSequence => {
    const blocks = Math.ceil((start + n) / o.blockSize);
    if (nextBlock + blocks > o.numBlocks) nextBlock = 0;
    const table = Array.from({ length: blocks }, (_, i) => nextBlock + i);
    nextBlock += blocks;
    const tokens = Array.from(
      { length: n },
      (_, i) => 16 + ((i * 7919 + start) % Math.max(1, config.vocabSize - 16)),
    );
    return {
      id,
      tokens,
      startPos: start,
      blockTable: table,
      sample: true,
      sampling: GREEDY,
      outputIndex: 0,
    };
  };
  const batches: Batch[] = [];
  for (const [c, p] of grid.prefill) batches.push(mk([seq("p", p, c)]));
  for (const [b, ctx] of grid.decode) {
    batches.push(mk(Array.from({ length: b }, (_, i) => seq(`d${i}`, ctx, 1))));
  }
  for (const [c, b, ctx] of grid.mixed) {
    batches.push(
      mk([seq("p", 0, c), ...Array.from({ length: b }, (_, i) => seq(`d${i}`, ctx, 1))]),
    );
  }
  const out: StepSample[] = [];
  for (const batch of batches) await executor.run(batch); // warm-up (JIT)
  for (const batch of batches) {
    const times: number[] = [];
    for (let r = 0; r < repeats; r++) {
      const t0 = performance.now();
      await executor.run(batch);
      times.push((performance.now() - t0) / 1000);
    }
    times.sort((a, b) => a - b);
    // The fastest run: least disturbed by other processes on the machine.
    out.push({ shape: batchShape(batch), seconds: times[0] });
  }
  return out;
}

function mk(sequences: BatchSequence[]): Batch {
  let numTokens = 0, numDecodes = 0;
  for (const s of sequences) {
    numTokens += s.tokens.length;
    if (s.tokens.length === 1) numDecodes++;
  }
  return { step: 0, sequences, numTokens, numDecodes };
}
