import assert from "node:assert/strict";
import { openGpu } from "../../../kernels/webgpu/device.ts";
import {
  bind,
  buffer,
  pipeline,
  signature,
  STORAGE,
  upload,
} from "../../../kernels/webgpu/resources.ts";
import { STEP_WORDS } from "../../../kernels/webgpu/wgsl/common.ts";
import { TOPK_MAX, topKShader } from "../../../kernels/webgpu/wgsl/topk.ts";
import { GpuRunner, type RunnerSequence } from "../../../kernels/webgpu/runner.ts";
import { presetModel } from "../../../core/model/load.ts";
import { HAS_GPU } from "./harness.ts";

/** The sampler's ranking: by logit (NaN as minus infinity, -0 as 0), ties to the lower id. */
function hostTopK(row: Float32Array, k: number): number[] {
  const rank = (t: number) => (row[t] === row[t] ? row[t] : -Infinity);
  return [...row.keys()].sort((a, b) => (rank(b) > rank(a) ? 1 : rank(b) < rank(a) ? -1 : a - b))
    .slice(0, k);
}

/** Run the selection kernel on `rows` (each `vocab` logits) with one k per row. */
async function deviceTopK(
  device: GPUDevice,
  vocab: number,
  rows: Float32Array[],
  ks: number[],
): Promise<{ ids: number[]; bits: number[] }[]> {
  const sig = signature(device, ["ro", "ro", "rw", "uniform"]);
  const pipe = await pipeline(device, sig, topKShader(vocab), "top-k");
  const logits = new Float32Array(rows.length * vocab);
  rows.forEach((r, i) => logits.set(r, i * vocab));
  // (sampled row, k) pairs listed in reverse, so a selected row differs from its slot.
  const pairs = Uint32Array.from(ks.flatMap((k, i) => [rows.length - 1 - i, k]));
  const step = new Uint32Array(STEP_WORDS);
  step[10] = 0; // topkOff
  step[11] = ks.length; // topkRows
  const outBytes = ks.length * TOPK_MAX * 8;
  const bufs = [
    upload(device, logits, "logits"),
    upload(device, pairs, "pairs"),
    buffer(device, outBytes, STORAGE, "out"),
    buffer(device, STEP_WORDS * 4, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, "step"),
  ];
  device.queue.writeBuffer(bufs[3], 0, step);
  const rb = buffer(device, outBytes, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, "rb");
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipe);
  pass.setBindGroup(0, bind(device, sig, bufs));
  pass.dispatchWorkgroups(ks.length);
  pass.end();
  enc.copyBufferToBuffer(bufs[2], 0, rb, 0, outBytes);
  device.queue.submit([enc.finish()]);
  await rb.mapAsync(GPUMapMode.READ);
  const out = new Uint32Array(rb.getMappedRange().slice(0));
  rb.unmap();
  for (const b of [...bufs, rb]) b.destroy();
  return ks.map((k, i) => {
    const at = i * TOPK_MAX * 2;
    const ids: number[] = [];
    const bits: number[] = [];
    for (let j = 0; j < k; j++) {
      ids.push(out[at + 2 * j]);
      bits.push(out[at + 2 * j + 1]);
    }
    return { ids, bits };
  });
}

function bitsOf(x: number): number {
  return new Uint32Array(Float32Array.of(x).buffer)[0];
}

Deno.test({
  name: "webgpu top-k: selects the sampler's top k, ties to the lower id, NaN last",
  ignore: !HAS_GPU,
  async fn() {
    const gpu = await openGpu();
    try {
      const vocab = 1999; // not a multiple of the workgroup size
      let s = 7;
      const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
      // Few distinct values, so the k-th place is usually a tie among many ids.
      const coarse = Float32Array.from({ length: vocab }, () => Math.floor(next() * 9) - 4);
      const special = Float32Array.from(
        { length: vocab },
        (_, i) => [NaN, -Infinity, -0, 0, Infinity, 3.5, -1e-40, 1e-40][i % 8],
      );
      const fine = Float32Array.from({ length: vocab }, () => (next() - 0.5) * 40);
      const allNaN = new Float32Array(vocab).fill(NaN);
      const cases: [Float32Array, number][] = [
        [coarse, 1],
        [coarse, 37],
        [coarse, TOPK_MAX],
        [special, 5],
        [special, 300],
        [fine, 50],
        [fine, vocab - 1 > TOPK_MAX ? TOPK_MAX : vocab - 1],
        [allNaN, 3],
      ];
      // The kernel reads rows in reverse order of the pairs (see deviceTopK).
      const rows = cases.map(([row]) => row).reverse();
      const got = await deviceTopK(gpu.device, vocab, rows, cases.map(([, k]) => k));
      cases.forEach(([row, k], i) => {
        const want = hostTopK(row, k);
        assert.deepEqual([...got[i].ids].sort((a, b) => a - b), [...want].sort((a, b) => a - b));
        got[i].ids.forEach((id, j) => assert.equal(got[i].bits[j], bitsOf(row[id]), `id ${id}`));
      });
    } finally {
      gpu.device.destroy();
    }
  },
});

Deno.test({
  name: "webgpu top-k: a forward pass reads back k pairs for a top-k row, not its logits",
  ignore: !HAS_GPU,
  async fn() {
    const model = presetModel("tiny");
    const gpu = await openGpu();
    const runner = await GpuRunner.create(gpu, model.config, await model.weights(), {
      maxTokens: 64,
      maxSeqs: 4,
      maxPositions: 64,
      numBlocks: 16,
      blockSize: 8,
      matvecMaxRows: 32,
    }, "f32");
    try {
      const seq = (tokens: number[], blocks: number[], extra: Partial<RunnerSequence>) => ({
        tokens,
        startPos: 0,
        blockTable: blocks,
        prefixLen: 0,
        mode: 0 as const,
        sample: true,
        wantLogits: false,
        ...extra,
      });
      const seqs = () => [
        seq([1, 5, 9], [0], { topK: 7 }),
        seq([2, 4], [1], {}),
        seq([3, 3, 3, 8], [2], { topK: 1 }),
      ];
      const selected = await runner.run(seqs(), 0);
      assert.equal(runner.lastReadBytes, 2 * 8 + (7 + 1) * 8, "ids (padded) and 8 pairs");
      const full = await runner.run(seqs().map((s) => ({ ...s, topK: 0, wantLogits: true })), 0);
      for (const [i, k] of [[0, 7], [2, 1]]) {
        const c = selected.candidates[i]!;
        const row = full.logits[i]!;
        assert.deepEqual([...c.ids].sort((a, b) => a - b), hostTopK(row, k).sort((a, b) => a - b));
        c.ids.forEach((id, j) => assert.equal(c.logits[j], row[id]));
      }
      assert.equal(selected.candidates[1], undefined);
      assert.equal(selected.greedy[1], full.greedy[1]);
      await assert.rejects(
        () => runner.run([seq([1], [0], { topK: TOPK_MAX + 1 })], 0),
        /top-k 1025 on the GPU/,
      );
    } finally {
      runner.destroy();
      gpu.device.destroy();
    }
  },
});
