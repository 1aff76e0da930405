/**
 * Test helpers: a plugin context for a preset model and a small continuous-batching
 * driver that feeds the same batches (staggered arrivals, chunked prefill, decodes,
 * shuffled block tables) to two executors and collects both outputs.
 *
 * @module
 */

import type { Executor, PluginContext } from "../../../core/slots.ts";
import type { BatchSequence, SamplingParams, StepOutput } from "../../../core/types.ts";
import type { Model } from "../../../core/model/types.ts";
import type { RelayBatch, RelayPrefix } from "../../../kernels/relay/types.ts";

/** Whether a WebGPU adapter exists here (tests skip cleanly without one). */
export const HAS_GPU: boolean = await (async () => {
  // Mesa's Vulkan driver warns on stderr when this is unset; any writable folder will do.
  if (!Deno.env.get("XDG_RUNTIME_DIR")) Deno.env.set("XDG_RUNTIME_DIR", Deno.makeTempDirSync());
  try {
    const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
    return Boolean(gpu && (await gpu.requestAdapter()));
  } catch {
    return false;
  }
})();

/** KV geometry and limits of a test context. */
export interface ContextShape {
  /** Blocks in the pool. */
  numBlocks: number;
  /** Tokens per block. */
  blockSize: number;
  /** Most tokens per step. */
  maxBatchTokens: number;
  /** Most sequences per step. */
  maxBatchSeqs: number;
  /** Longest context. */
  maxModelLen: number;
}

/** A plugin context for `model`. */
export function context(model: Model, shape: ContextShape): PluginContext {
  return {
    model,
    kv: { blockSize: shape.blockSize, numBlocks: shape.numBlocks },
    limits: {
      maxBatchTokens: shape.maxBatchTokens,
      maxBatchSeqs: shape.maxBatchSeqs,
      maxModelLen: shape.maxModelLen,
    },
    seed: 0,
    log: () => {},
  };
}

/** Greedy sampling parameters. */
export function greedy(maxTokens: number, extra: Partial<SamplingParams> = {}): SamplingParams {
  return {
    temperature: 0,
    topK: 0,
    topP: 1,
    seed: 0,
    maxTokens,
    stopTokenIds: [],
    stop: [],
    ignoreEos: true,
    logprobs: -1,
    ...extra,
  };
}

/** One scripted request. */
export interface ScriptedRequest {
  /** Prompt token ids (after the shared prompt, when `prefixed`). */
  prompt: number[];
  /** Tokens to generate. */
  maxTokens: number;
  /** Step at which it arrives. */
  arrival: number;
  /** Sampling (greedy by default). */
  sampling?: Partial<SamplingParams>;
  /** Its positions start after the shared relay prompt. */
  prefixed?: boolean;
}

/** The outputs of both executors at one step, per sampled sequence. */
export interface StepPair {
  /** Request index per sampled sequence. */
  requests: number[];
  /** The executors' outputs for the step. */
  outputs: StepOutput[];
  /** Sequence index in the batch per sampled sequence. */
  rows: number[];
}

/** Options of {@link drive}. */
export interface DriveOptions {
  /** Longest prefill chunk per step. */
  chunk: number;
  /** The shared prompt of prefixed requests. */
  relay?: RelayPrefix;
  /** Seed of the block shuffling. */
  seed?: number;
}

/**
 * Run `requests` to completion on all `executors` with identical batches; the tokens fed
 * back are those of the first executor. Returns every step's outputs.
 */
export async function drive(
  executors: Executor[],
  requests: ScriptedRequest[],
  shape: ContextShape,
  options: DriveOptions,
): Promise<StepPair[]> {
  let rng = (options.seed ?? 1) >>> 0 || 1;
  const rand = () => {
    rng ^= rng << 13;
    rng >>>= 0;
    rng ^= rng >>> 17;
    rng ^= rng << 5;
    rng >>>= 0;
    return rng / 0x100000000;
  };
  const free = Array.from({ length: shape.numBlocks }, (_, i) => i);
  for (let i = free.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [free[i], free[j]] = [free[j], free[i]];
  }
  const state = requests.map(() => ({ out: [] as number[], computed: 0, blocks: [] as number[] }));
  const pairs: StepPair[] = [];
  const first = options.relay?.tokens.length ?? 0;
  for (let step = 0; step < 10_000; step++) {
    const seqs: (BatchSequence & { prefixed?: boolean })[] = [];
    const who: number[] = [];
    let budget = shape.maxBatchTokens;
    requests.forEach((r, i) => {
      const s = state[i];
      if (r.arrival > step || s.out.length >= r.maxTokens || budget === 0) return;
      if (seqs.length >= shape.maxBatchSeqs) return;
      const all = [...r.prompt, ...s.out];
      const n = Math.min(all.length - s.computed, options.chunk, budget);
      budget -= n;
      const base = r.prefixed ? first : 0;
      while (s.blocks.length * shape.blockSize < s.computed + n) {
        const b = free.pop();
        if (b === undefined) throw new Error("test pool too small");
        s.blocks.push(b);
      }
      seqs.push({
        id: `r${i}`,
        tokens: all.slice(s.computed, s.computed + n),
        startPos: base + s.computed,
        blockTable: [...s.blocks],
        sample: s.computed + n === all.length,
        sampling: greedy(r.maxTokens, r.sampling),
        outputIndex: s.out.length,
        prefixed: r.prefixed,
      });
      who.push(i);
      s.computed += n;
    });
    if (seqs.length === 0) {
      if (state.every((s, i) => s.out.length >= requests[i].maxTokens)) break;
      continue;
    }
    const batch: RelayBatch = {
      step,
      sequences: seqs,
      numTokens: seqs.reduce((a, s) => a + s.tokens.length, 0),
      numDecodes: seqs.filter((s, k) => s.tokens.length === 1 && state[who[k]].out.length > 0)
        .length,
    };
    if (options.relay && seqs.some((s) => s.prefixed)) batch.relay = options.relay;
    const outputs: StepOutput[] = [];
    for (const ex of executors) outputs.push(await ex.run(batch));
    const pair: StepPair = { requests: [], outputs, rows: [] };
    seqs.forEach((s, k) => {
      if (!s.sample) return;
      const i = who[k];
      state[i].out.push(outputs[0].tokens[k]);
      pair.requests.push(i);
      pair.rows.push(k);
      if (state[i].out.length >= requests[i].maxTokens) {
        free.push(...state[i].blocks);
        state[i].blocks = [];
      }
    });
    pairs.push(pair);
  }
  return pairs;
}

/** Largest |a - b| and the gap between the two largest values of `a`. */
export function compareLogits(a: Float32Array, b: Float32Array): { maxDiff: number; gap: number } {
  let maxDiff = 0;
  let top = -Infinity;
  let second = -Infinity;
  for (let i = 0; i < a.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
    if (a[i] > top) {
      second = top;
      top = a[i];
    } else if (a[i] > second) second = a[i];
  }
  return { maxDiff, gap: top - second };
}

/** Logits (and tokens) of executor `exec` keyed by `request:outputIndex`. */
export function byOutput(
  pairs: StepPair[],
  exec: number,
): Map<string, { token: number; logits?: Float32Array }> {
  const seen = new Map<string, { token: number; logits?: Float32Array }>();
  const counts = new Map<number, number>();
  for (const p of pairs) {
    p.requests.forEach((i, k) => {
      const n = counts.get(i) ?? 0;
      counts.set(i, n + 1);
      const out = p.outputs[exec];
      seen.set(`${i}:${n}`, { token: out.tokens[p.rows[k]], logits: out.logits?.[p.rows[k]] });
    });
  }
  return seen;
}
