import assert from "node:assert/strict";
import fc from "fast-check";
import { presetConfig } from "../../../core/model/presets.ts";
import { dummyWeights } from "../../../core/model/dummy.ts";
import type { ModelConfig, ModelWeights } from "../../../core/model/types.ts";
import type { Batch, BatchSequence, SamplingParams } from "../../../core/types.ts";
import { argmax } from "../../../core/sampling.ts";
import { PagedKvStore } from "../../../kernels/reference/kv_store.ts";
import { forward } from "../../../kernels/reference/forward.ts";
import { naiveGreedy, naiveLogits } from "../../../kernels/reference/naive.ts";

const GREEDY: SamplingParams = {
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

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

/** A sequence in a scripted run: its tokens so far and how many are in the KV store. */
interface Seq {
  id: string;
  tokens: number[];
  promptLen: number;
  computed: number;
  blockTable: number[];
}

/**
 * Drives the paged forward like an engine would: each step, every sequence computes a
 * chunk (`chunkOf` tokens of its remaining prompt, or one decode), blocks come from a
 * shuffled pool, and each sampled logits vector is checked against the naive oracle.
 */
function runScripted(
  config: ModelConfig,
  weights: ModelWeights,
  prompts: number[][],
  opts: {
    blockSize: number;
    generate: number;
    /** Tokens sequence `seq` computes at `step` (capped by what is left; 0 skips it). */
    chunkOf: (seq: number, step: number) => number;
    /** A permutation of the pool's block ids: the order blocks are handed out. */
    order: number[];
  },
): number[][] {
  const kv = new PagedKvStore(config, opts.order.length, opts.blockSize);
  const free = opts.order.slice();
  const seqs: Seq[] = prompts.map((p, i) => ({
    id: `s${i}`,
    tokens: [...p],
    promptLen: p.length,
    computed: 0,
    blockTable: [],
  }));
  for (let step = 0; seqs.some((s) => s.tokens.length - s.promptLen < opts.generate); step++) {
    const active: Seq[] = [];
    const batchSeqs: BatchSequence[] = [];
    for (const s of seqs) {
      if (s.tokens.length - s.promptLen >= opts.generate) continue;
      const want = opts.chunkOf(seqs.indexOf(s), step); // 0: sits this step out
      if (want <= 0) continue;
      active.push(s);
      const n = Math.min(s.tokens.length - s.computed, want);
      while (s.blockTable.length * opts.blockSize < s.computed + n) {
        s.blockTable.push(free.shift()!);
      }
      batchSeqs.push({
        id: s.id,
        tokens: s.tokens.slice(s.computed, s.computed + n),
        startPos: s.computed,
        blockTable: [...s.blockTable],
        sample: s.computed + n === s.tokens.length,
        sampling: GREEDY,
        outputIndex: s.tokens.length - s.promptLen,
      });
    }
    const batch: Batch = {
      step,
      sequences: batchSeqs,
      numTokens: batchSeqs.reduce((a, b) => a + b.tokens.length, 0),
      numDecodes: batchSeqs.filter((b) => b.startPos >= seqs.find((s) => s.id === b.id)!.promptLen)
        .length,
    };
    const logits = forward(weights, config, kv, batch);
    batchSeqs.forEach((b, i) => {
      const s = active[i];
      s.computed += b.tokens.length;
      if (!b.sample) {
        assert.equal(logits[i], undefined);
        return;
      }
      const oracle = naiveLogits(weights, config, s.tokens);
      const d = maxDiff(logits[i]!, oracle);
      assert.ok(d < 1e-4, `${s.id} step ${step}: logits differ by ${d}`);
      s.tokens.push(argmax(logits[i]!));
    });
  }
  return seqs.map((s) => s.tokens.slice(s.promptLen));
}

for (const name of ["tiny", "tiny-gqa"]) {
  Deno.test(`${name}: a batch mixing chunks and decodes matches the naive forward`, () => {
    const config = presetConfig(name)!;
    const weights = dummyWeights(config, 3);
    const prompts = [
      [1, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130],
      [1, 72, 105, 33, 10],
      [1, 200, 201, 202, 203, 204, 205],
    ];
    // Chunks: seq 0 in 6 + 5 tokens, seq 1 whole, seq 2 joins late in 3 + 4.
    const chunks = [[6, 5], [5], [0, 3, 4]];
    const order = [...Array(64).keys()].reverse(); // blocks handed out from the top
    const out = runScripted(config, weights, prompts, {
      blockSize: 4,
      generate: 5,
      order,
      chunkOf: (s, step) => chunks[s][step] ?? 1,
    });
    out.forEach((tokens, i) => {
      assert.deepEqual(tokens, naiveGreedy(weights, config, prompts[i], 5));
    });
  });
}

Deno.test("paged forward equals the naive oracle for random chunking and block tables", () => {
  const configs = ["tiny", "tiny-gqa"].map((n) => presetConfig(n)!);
  const weights = configs.map((c) => dummyWeights(c, 1));
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 1 }),
      fc.array(fc.array(fc.integer({ min: 3, max: 258 }), { minLength: 1, maxLength: 14 }), {
        minLength: 1,
        maxLength: 3,
      }),
      fc.constantFrom(1, 2, 3, 16),
      fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 12, maxLength: 12 }),
      fc.integer({ min: 0, max: 1000 }),
      (m, prompts, blockSize, chunkSizes, shuffleSeed) => {
        const n = 200;
        const order = [...Array(n).keys()].sort((a, b) =>
          ((a * 7919 + shuffleSeed) % n) - ((b * 7919 + shuffleSeed) % n)
        );
        runScripted(configs[m], weights[m], prompts, {
          blockSize,
          generate: 3,
          order,
          chunkOf: (s, step) => chunkSizes[(s * 5 + step) % chunkSizes.length],
        });
      },
    ),
    { numRuns: 12 },
  );
});

Deno.test("the paged store addresses block table entries and rejects missing blocks", () => {
  const config = presetConfig("tiny")!;
  const kv = new PagedKvStore(config, 8, 4);
  assert.equal(kv.kvDim, 64);
  assert.equal(kv.k.length, 2);
  assert.equal(kv.k[0].length, 8 * 4 * 64);
  assert.equal(kv.offset([5, 2], 0), 5 * 4 * 64);
  assert.equal(kv.offset([5, 2], 6), (2 * 4 + 2) * 64);
  assert.throws(() => kv.offset([5], 4), RangeError);
  assert.throws(() => kv.offset([9], 0), RangeError);
  assert.throws(() => new PagedKvStore(config, 0, 4), RangeError);
});

Deno.test("forward rejects token ids outside the vocabulary", () => {
  const config = presetConfig("tiny")!;
  const kv = new PagedKvStore(config, 4, 4);
  const batch: Batch = {
    step: 0,
    numTokens: 1,
    numDecodes: 0,
    sequences: [{
      id: "x",
      tokens: [config.vocabSize],
      startPos: 0,
      blockTable: [0],
      sample: true,
      sampling: GREEDY,
      outputIndex: 0,
    }],
  };
  assert.throws(() => forward(dummyWeights(config), config, kv, batch), /outside/);
});
