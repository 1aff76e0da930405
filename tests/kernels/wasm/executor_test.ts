import assert from "node:assert/strict";
import { presetModel } from "../../../core/model/load.ts";
import { presetConfig } from "../../../core/model/presets.ts";
import { dummyWeights } from "../../../core/model/dummy.ts";
import { ByteTokenizer } from "../../../core/model/byte_tokenizer.ts";
import type { Model } from "../../../core/model/types.ts";
import { referenceExecutor } from "../../../kernels/reference/plugin.ts";
import { wasmExecutor } from "../../../kernels/wasm/plugin.ts";
import type { Executor } from "../../../core/slots.ts";
import type { BatchSequence, SamplingParams } from "../../../core/types.ts";
import { context, GREEDY, maxAbsDiff, runScenario, type StepPair, topGap } from "./_scenario.ts";

/** f32 weights: logits agree with the reference to this (observed: about 1e-6). */
const F32_TOL = 1e-4;
/** bf16 weights: logits within this fraction of the reference's largest magnitude. */
const BF16_REL_TOL = 0.05;

const BLOCK = 4;
const BLOCKS = 40;

async function pair(
  name: string | Model,
  options: Record<string, unknown>,
): Promise<{ ref: Executor; wasm: Executor }> {
  const model = typeof name === "string" ? presetModel(name, 1) : name;
  const ctx = context(model, BLOCK, BLOCKS);
  const ref = await referenceExecutor.create(
    referenceExecutor.options.parse({ keepLogits: true }),
    ctx,
  );
  const wasm = await wasmExecutor.create(
    wasmExecutor.options.parse({ keepLogits: true, ...options }),
    ctx,
  );
  return { ref, wasm };
}

/** Every sampled token equal (unless the reference's top two are within `tol`), logits within `tol`. */
function assertEquivalent(pairs: StepPair[], tol: (ref: Float32Array) => number): number {
  let compared = 0;
  for (const { batch, expected, actual } of pairs) {
    batch.sequences.forEach((seq, i) => {
      const e = expected.logits![i];
      const a = actual.logits![i];
      if (!seq.sample) {
        assert.equal(actual.tokens[i], -1, `step ${batch.step} ${seq.id}: no sample expected`);
        assert.equal(a, undefined);
        return;
      }
      assert.ok(e && a, `step ${batch.step} ${seq.id}: logits missing`);
      const t = tol(e);
      const diff = maxAbsDiff(e, a);
      assert.ok(diff <= t, `step ${batch.step} ${seq.id}: logits differ by ${diff} > ${t}`);
      if (topGap(e) > 2 * t) {
        assert.equal(actual.tokens[i], expected.tokens[i], `step ${batch.step} ${seq.id} token`);
      }
      compared++;
    });
  }
  return compared;
}

for (const name of ["tiny", "tiny-gqa", "small"]) {
  Deno.test(`wasm matches the reference on ${name}: chunks, decodes, preemption, f32`, async () => {
    const { ref, wasm } = await pair(name, { threads: 2, weights: "f32", microBatch: 6 });
    try {
      const pairs = await runScenario(ref, wasm, BLOCK, BLOCKS);
      const n = assertEquivalent(pairs, () => F32_TOL);
      assert.ok(n >= 20, `only ${n} sampled outputs compared`);
    } finally {
      await wasm.close?.();
    }
  });
}

Deno.test("wasm logits are bitwise the same for any thread count", async () => {
  const model = presetModel("tiny-gqa", 2);
  const ctx = context(model, BLOCK, BLOCKS);
  const make = (threads: number) =>
    wasmExecutor.create(
      wasmExecutor.options.parse({ keepLogits: true, threads, microBatch: 8, weights: "f32" }),
      ctx,
    );
  const one = await make(1);
  const three = await make(3);
  try {
    const pairs = await runScenario(one, three, BLOCK, BLOCKS);
    for (const { batch, expected, actual } of pairs) {
      batch.sequences.forEach((seq, i) => {
        if (!seq.sample) return;
        // Rows are split between threads in whole blocks and every dot product runs the
        // same code whichever thread runs it.
        assert.deepEqual(actual.logits![i], expected.logits![i], `step ${batch.step} ${seq.id}`);
      });
    }
  } finally {
    await one.close?.();
    await three.close?.();
  }
});

Deno.test("one-token micro-batches match the reference as well as long ones", async () => {
  const { ref, wasm } = await pair("tiny", { threads: 2, microBatch: 1, weights: "f32" });
  try {
    assertEquivalent(await runScenario(ref, wasm, BLOCK, BLOCKS, undefined, 5), () => F32_TOL);
  } finally {
    await wasm.close?.();
  }
});

Deno.test("the plain-SIMD build matches the reference too", async () => {
  const { ref, wasm } = await pair("tiny", { threads: 2, simd: "simd", weights: "f32" });
  try {
    assertEquivalent(await runScenario(ref, wasm, BLOCK, BLOCKS, undefined, 5), () => F32_TOL);
  } finally {
    await wasm.close?.();
  }
});

Deno.test("bf16 weights stay close to the f32 reference", async () => {
  for (const name of ["tiny-gqa", "small"]) {
    const { ref, wasm } = await pair(name, { threads: 2, weights: "bf16" });
    try {
      const pairs = await runScenario(ref, wasm, BLOCK, BLOCKS, undefined, 6);
      let worst = 0;
      for (const { batch, expected, actual } of pairs) {
        batch.sequences.forEach((seq, i) => {
          if (!seq.sample) return;
          const e = expected.logits![i]!;
          const scale = e.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
          worst = Math.max(worst, maxAbsDiff(e, actual.logits![i]!) / scale);
        });
      }
      assert.ok(worst <= BF16_REL_TOL, `${name}: bf16 logits off by ${worst} of their range`);
      assert.ok(worst > 0, "bf16 rounding changed nothing: were the weights stored as f32?");
    } finally {
      await wasm.close?.();
    }
  }
});

Deno.test("seeded sampling and log-probabilities match the reference", async () => {
  const { ref, wasm } = await pair("tiny", { threads: 2, keepLogits: false });
  const sampling = (id: string): SamplingParams => ({
    ...GREEDY,
    temperature: id === "c" ? 0 : 0.8,
    topK: id === "a" ? 20 : 0,
    topP: id === "b" ? 0.9 : 1,
    seed: id.charCodeAt(0),
    logprobs: 3,
  });
  try {
    const pairs = await runScenario(ref, wasm, BLOCK, BLOCKS, sampling, 7);
    let n = 0;
    for (const { batch, expected, actual } of pairs) {
      assert.equal(actual.logits, undefined, "logits are kept only when asked");
      batch.sequences.forEach((seq, i) => {
        if (!seq.sample) return;
        assert.equal(actual.tokens[i], expected.tokens[i], `step ${batch.step} ${seq.id}`);
        const e = expected.logprobs![i]!;
        const a = actual.logprobs![i]!;
        assert.ok(Math.abs(e.logprob - a.logprob) < 1e-4);
        assert.deepEqual(a.top.map((t) => t.token), e.top.map((t) => t.token));
        n++;
      });
    }
    assert.ok(n >= 15);
  } finally {
    await wasm.close?.();
  }
});

Deno.test("bad batches are refused before any kernel runs", async () => {
  const model = presetModel("tiny");
  const exec = await wasmExecutor.create(
    wasmExecutor.options.parse({ threads: 2 }),
    context(model, BLOCK, 8),
  );
  const seq: BatchSequence = {
    id: "x",
    tokens: [5, 6],
    startPos: 0,
    blockTable: [0],
    sample: true,
    sampling: GREEDY,
    outputIndex: 0,
  };
  try {
    const run = (over: Partial<BatchSequence>) =>
      exec.run({ step: 0, numTokens: 2, numDecodes: 0, sequences: [{ ...seq, ...over }] });
    assert.throws(() => run({ tokens: [5, 999] }), /token 999 is outside/);
    assert.throws(() => run({ blockTable: [8] }), /outside the KV pool/);
    assert.throws(() => run({ startPos: 3, blockTable: [0] }), /do not cover/);
    assert.throws(() => run({ startPos: 600, blockTable: [] }), /reaches position/);
    assert.throws(() => run({ prefixed: true }), /no shared prompt/);
    // The executor still works after refusing.
    const out = await run({});
    assert.ok(out.tokens[0] >= 0 && out.tokens[0] < model.config.vocabSize);
  } finally {
    await exec.close?.();
  }
});

Deno.test("RelayAttention: prefixed sequences after a shared prompt match the reference", async () => {
  const { ref, wasm } = await pair("tiny-gqa", { threads: 2, microBatch: 5 });
  assert.equal(wasm.relay, true);
  const shared = { id: "p1", tokens: [1, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49] };
  const base = shared.tokens.length;
  let nextBlock = 0;
  const seqs = {
    a: { prompt: [60, 61, 62, 63, 64, 65, 66], prefixed: true, out: [] as number[], done: 0 },
    b: { prompt: [70, 71, 72], prefixed: true, out: [] as number[], done: 0 },
    c: { prompt: [80, 81, 82, 83, 84, 85], prefixed: false, out: [] as number[], done: 0 },
  };
  const tables: Record<string, number[]> = { a: [], b: [], c: [] };
  const plan: [keyof typeof seqs, number][][] = [
    [["a", 4], ["c", 6]],
    [["a", 3], ["b", 3], ["c", 1]],
    [["a", 1], ["b", 1], ["c", 1]],
    [["a", 1], ["b", 1], ["c", 1]],
    [["a", 1], ["b", 1], ["c", 1]],
  ];
  let compared = 0;
  for (const [step, chunks] of plan.entries()) {
    const sequences: BatchSequence[] = chunks.map(([id, n]) => {
      const q = seqs[id];
      const all = [...q.prompt, ...q.out];
      const own = q.done + n;
      while (tables[id].length * BLOCK < own) tables[id].push(nextBlock++);
      return {
        id,
        tokens: all.slice(q.done, q.done + n),
        startPos: (q.prefixed ? base : 0) + q.done,
        blockTable: [...tables[id]],
        sample: own === all.length,
        sampling: GREEDY,
        outputIndex: q.out.length,
        prefixed: q.prefixed,
      };
    });
    const batch = {
      step,
      sequences,
      numTokens: chunks.reduce((k, [, n]) => k + n, 0),
      numDecodes: 0,
      relay: shared,
    };
    const e = await ref.run(batch);
    const a = await wasm.run(batch);
    sequences.forEach((seq, i) => {
      const q = seqs[seq.id as keyof typeof seqs];
      q.done += seq.tokens.length;
      if (!seq.sample) return;
      const diff = maxAbsDiff(e.logits![i]!, a.logits![i]!);
      assert.ok(diff <= F32_TOL, `step ${step} ${seq.id}: logits differ by ${diff}`);
      if (topGap(e.logits![i]!) > 2 * F32_TOL) assert.equal(a.tokens[i], e.tokens[i]);
      q.out.push(e.tokens[i]);
      compared++;
    });
  }
  assert.ok(compared >= 11);
  await wasm.close?.();
});

Deno.test("odd shapes (widths not multiples of 8, three heads over one KV head) match too", async () => {
  const config = {
    ...presetConfig("tiny")!,
    dim: 36,
    hiddenDim: 50,
    nHeads: 3,
    nKvHeads: 1,
    headDim: 10,
    vocabSize: 300,
  };
  const weights = dummyWeights(config, 4);
  const model: Model = {
    name: "odd",
    config,
    tokenizer: new ByteTokenizer(config.vocabSize),
    source: "dummy(seed=4)",
    dtype: "f32",
    weights: () => Promise.resolve(weights),
  };
  for (const threads of [1, 2]) {
    const { ref, wasm } = await pair(model, { threads, microBatch: 7, weights: "f32" });
    try {
      assertEquivalent(await runScenario(ref, wasm, BLOCK, BLOCKS, undefined, 6), () => F32_TOL);
    } finally {
      await wasm.close?.();
    }
  }
});

Deno.test("a context filling the model's 512 positions, in long chunks, matches the reference", async () => {
  const model = presetModel("tiny-gqa", 3);
  const ctx = context(model, 16, 40);
  const ref = await referenceExecutor.create(
    referenceExecutor.options.parse({ keepLogits: true }),
    ctx,
  );
  const wasm = await wasmExecutor.create(
    wasmExecutor.options.parse({ keepLogits: true, threads: 2 }),
    ctx,
  );
  const tokens = Array.from({ length: 512 }, (_, i) => 3 + ((i * 7) % 250));
  const table = Array.from({ length: 32 }, (_, i) => 39 - i); // blocks in reverse order
  try {
    let pos = 0;
    for (const n of [200, 200, 110, 1, 1]) {
      const seq: BatchSequence = {
        id: "a",
        tokens: tokens.slice(pos, pos + n),
        startPos: pos,
        blockTable: table,
        sample: pos + n > 500,
        sampling: GREEDY,
        outputIndex: 0,
      };
      const batch = { step: 0, numTokens: n, numDecodes: 0, sequences: [seq] };
      const e = await ref.run(batch);
      const a = await wasm.run(batch);
      if (seq.sample) {
        assert.ok(
          maxAbsDiff(e.logits![0]!, a.logits![0]!) <= F32_TOL,
          `at position ${pos + n - 1}`,
        );
        if (topGap(e.logits![0]!) > 2 * F32_TOL) assert.equal(a.tokens[0], e.tokens[0]);
      }
      pos += n;
    }
    assert.equal(pos, 512);
  } finally {
    await wasm.close?.();
  }
});
