import assert from "node:assert/strict";
import { openGpu } from "../../../kernels/webgpu/device.ts";
import {
  type AttentionData,
  type AttentionProblem,
  GpuAttentionOp,
} from "../../../kernels/webgpu/attention_op.ts";
import {
  attendKeys,
  attendShared,
  contiguousKeys,
  type HeadShape,
  mergeParts,
} from "../../../kernels/relay/attention.ts";
import { HAS_GPU } from "./harness.ts";

function randoms(n: number, seed: number, amp: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 0x100000000 * 2 - 1) * amp;
  }
  return out;
}

function problemData(p: AttentionProblem, seed: number, amp: number): AttentionData {
  const kvDim = p.nKvHeads * p.headDim;
  return {
    q: randoms(p.batch * p.nHeads * p.headDim, seed, amp),
    sharedK: randoms(p.shared * kvDim, seed + 1, amp),
    sharedV: randoms(p.shared * kvDim, seed + 2, 1),
    ownK: randoms(p.batch * p.own * kvDim, seed + 3, amp),
    ownV: randoms(p.batch * p.own * kvDim, seed + 4, 1),
  };
}

/** The TypeScript relay path: shared part for all queries, own part per sequence, merged. */
function expected(
  p: AttentionProblem,
  data: AttentionData,
): { out: Float32Array; lse: Float32Array } {
  const shape: HeadShape = { ...p, scale: 1 / Math.sqrt(p.headDim) };
  const kvDim = p.nKvHeads * p.headDim;
  const shared = attendShared(
    data.q,
    p.batch,
    contiguousKeys(data.sharedK, data.sharedV, shape),
    p.shared,
    shape,
  );
  const qDim = p.nHeads * p.headDim;
  const out = new Float32Array(p.batch * qDim);
  const lse = new Float32Array(p.batch * p.nHeads);
  for (let b = 0; b < p.batch; b++) {
    const k = data.ownK.subarray(b * p.own * kvDim, (b + 1) * p.own * kvDim);
    const v = data.ownV.subarray(b * p.own * kvDim, (b + 1) * p.own * kvDim);
    const own = attendKeys(
      data.q.subarray(b * qDim, (b + 1) * qDim),
      1,
      contiguousKeys(k, v, shape),
      0,
      [
        p.own,
      ],
      shape,
    );
    const part = {
      out: shared.out.subarray(b * qDim, (b + 1) * qDim),
      lse: shared.lse.subarray(b * p.nHeads, (b + 1) * p.nHeads),
    };
    const merged = mergeParts(part, own, p.headDim);
    out.set(merged.out, b * qDim);
    lse.set(merged.lse, b * p.nHeads);
  }
  return { out, lse };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const CASES: AttentionProblem[] = [
  { nHeads: 4, nKvHeads: 4, headDim: 16, blockSize: 4, batch: 3, shared: 40, own: 5 },
  { nHeads: 8, nKvHeads: 2, headDim: 8, blockSize: 8, batch: 5, shared: 136, own: 9 },
  { nHeads: 2, nKvHeads: 1, headDim: 64, blockSize: 16, batch: 17, shared: 32, own: 1 },
  { nHeads: 4, nKvHeads: 2, headDim: 12, blockSize: 4, batch: 2, shared: 0, own: 7 },
  // Wide heads: fewer keys per staged chunk of the paged kernel.
  { nHeads: 2, nKvHeads: 1, headDim: 128, blockSize: 16, batch: 2, shared: 64, own: 70 },
  // Long enough for the system part to be split over several key ranges.
  { nHeads: 2, nKvHeads: 2, headDim: 16, blockSize: 8, batch: 3, shared: 1040, own: 3 },
  // More than 16 query rows per KV head: one 32-row tile, partly filled, reads the prompt.
  { nHeads: 4, nKvHeads: 4, headDim: 128, blockSize: 16, batch: 21, shared: 304, own: 4 },
];

Deno.test({
  name: "webgpu attention: relay and paged kernels equal exact attention over prompt + own KV",
  ignore: !HAS_GPU,
  async fn() {
    const gpu = await openGpu();
    try {
      for (const [i, p] of CASES.entries()) {
        for (const amp of [1, 6]) {
          const data = problemData(p, 100 + i, amp);
          const want = expected(p, data);
          const op = await GpuAttentionOp.create(gpu, p, data);
          if (p.shared > 1000) assert.ok(op.splits > 1);
          try {
            for (const relay of [false, true]) {
              const got = await op.run(relay);
              const err = maxAbsDiff(got.out, want.out);
              assert.ok(err < 1e-5, `case ${i} amp ${amp} relay ${relay}: output error ${err}`);
              const lseErr = maxAbsDiff(got.lse, want.lse);
              assert.ok(lseErr < 1e-4 * amp * amp, `case ${i} relay ${relay}: lse error ${lseErr}`);
            }
          } finally {
            op.destroy();
          }
        }
      }
    } finally {
      gpu.device.destroy();
    }
  },
});
