import assert from "node:assert/strict";
import fc from "fast-check";
import {
  attendKeys,
  attendShared,
  contiguousKeys,
  type HeadShape,
  mergeParts,
  pagedKeys,
} from "../../../kernels/relay/attention.ts";

/** Deterministic pseudo-random floats in [-amp, amp]. */
function randoms(n: number, seed: number, amp: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = (s / 0xffffffff * 2 - 1) * amp;
  }
  return out;
}

/** Plain causal softmax attention in f64 over a contiguous KV: row i sees [0, ends[i]). */
function naive(
  q: Float32Array,
  rows: number,
  k: Float32Array,
  v: Float32Array,
  ends: number[],
  shape: HeadShape,
): Float32Array {
  const { nHeads, nKvHeads, headDim: d } = shape;
  const out = new Float32Array(rows * nHeads * d);
  for (let t = 0; t < rows; t++) {
    for (let h = 0; h < nHeads; h++) {
      const kvh = Math.floor(h / (nHeads / nKvHeads));
      const scores: number[] = [];
      for (let p = 0; p < ends[t]; p++) {
        let s = 0;
        for (let i = 0; i < d; i++) {
          s += q[(t * nHeads + h) * d + i] * k[(p * nKvHeads + kvh) * d + i];
        }
        scores.push(s * shape.scale);
      }
      const m = Math.max(...scores);
      const w = scores.map((s) => Math.exp(s - m));
      const z = w.reduce((a, b) => a + b, 0);
      for (let i = 0; i < d; i++) {
        let acc = 0;
        for (let p = 0; p < ends[t]; p++) acc += w[p] * v[(p * nKvHeads + kvh) * d + i];
        out[(t * nHeads + h) * d + i] = acc / z;
      }
    }
  }
  return out;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Copies a contiguous KV into a shuffled paged pool; returns the pool and the table. */
function page(
  k: Float32Array,
  v: Float32Array,
  from: number,
  len: number,
  stride: number,
  blockSize: number,
  seed: number,
): { k: Float32Array; v: Float32Array; table: number[] } {
  const nBlocks = Math.ceil(len / blockSize);
  const total = nBlocks + 3;
  const ids = Array.from({ length: total }, (_, i) => i);
  const r = randoms(total, seed, 1);
  ids.sort((a, b) => r[a] - r[b]);
  const table = ids.slice(0, nBlocks);
  const pk = new Float32Array(total * blockSize * stride).fill(Number.NaN);
  const pv = new Float32Array(total * blockSize * stride).fill(Number.NaN);
  for (let p = 0; p < len; p++) {
    const dst = (table[Math.floor(p / blockSize)] * blockSize + (p % blockSize)) * stride;
    pk.set(k.subarray((from + p) * stride, (from + p + 1) * stride), dst);
    pv.set(v.subarray((from + p) * stride, (from + p + 1) * stride), dst);
  }
  return { k: pk, v: pv, table };
}

Deno.test("relay: shared part + paged own part equals causal attention over the concatenation", () => {
  fc.assert(
    fc.property(
      fc.record({
        groups: fc.constantFrom(1, 2, 4),
        nKvHeads: fc.constantFrom(1, 2),
        headDim: fc.constantFrom(4, 8),
        shared: fc.integer({ min: 0, max: 40 }),
        own: fc.integer({ min: 1, max: 20 }),
        rows: fc.integer({ min: 1, max: 5 }),
        amp: fc.constantFrom(0.5, 4, 20),
        seed: fc.integer({ min: 1, max: 1 << 30 }),
        seeded: fc.boolean(),
      }),
      (c) => {
        const rows = Math.min(c.rows, c.own);
        const shape: HeadShape = {
          nHeads: c.groups * c.nKvHeads,
          nKvHeads: c.nKvHeads,
          headDim: c.headDim,
          scale: 1 / Math.sqrt(c.headDim),
        };
        const stride = c.nKvHeads * c.headDim;
        const total = c.shared + c.own;
        const k = randoms(total * stride, c.seed, c.amp);
        const v = randoms(total * stride, c.seed + 1, 1);
        const q = randoms(rows * shape.nHeads * c.headDim, c.seed + 2, c.amp);
        // The step's rows are the last `rows` tokens of the request: causal ends.
        const ends = Array.from({ length: rows }, (_, i) => total - rows + i + 1);
        const want = naive(q, rows, k, v, ends, shape);

        const sharedPart = attendShared(q, rows, contiguousKeys(k, v, shape), c.shared, shape);
        const paged = page(k, v, c.shared, c.own, stride, 4, c.seed + 3);
        const src = pagedKeys(paged.k, paged.v, shape, 4, paged.table, c.shared);
        const got = c.seeded
          ? attendKeys(q, rows, src, c.shared, ends, shape, sharedPart).out
          : mergeParts(sharedPart, attendKeys(q, rows, src, c.shared, ends, shape), c.headDim)
            .out;
        const err = maxAbsDiff(got, want);
        assert(err < 1e-5, `max abs error ${err}`);
      },
    ),
    { numRuns: 150, seed: 7 },
  );
});

Deno.test("relay: log-sum-exp of the merged parts is that of the whole key set", () => {
  const shape: HeadShape = { nHeads: 2, nKvHeads: 1, headDim: 8, scale: 0.35 };
  const k = randoms(30 * 8, 11, 3);
  const v = randoms(30 * 8, 12, 1);
  const q = randoms(2 * 8, 13, 3);
  const all = attendShared(q, 1, contiguousKeys(k, v, shape), 30, shape);
  const a = attendShared(q, 1, contiguousKeys(k, v, shape), 12, shape);
  const b = attendKeys(q, 1, contiguousKeys(k, v, shape), 12, [30], shape);
  const m = mergeParts(a, b, 8);
  for (let i = 0; i < 2; i++) assert(Math.abs(m.lse[i] - all.lse[i]) < 1e-5);
  assert(maxAbsDiff(m.out, all.out) < 1e-6);
});

Deno.test("relay: empty parts merge without NaN", () => {
  const shape: HeadShape = { nHeads: 1, nKvHeads: 1, headDim: 4, scale: 0.5 };
  const k = randoms(16, 3, 1);
  const v = randoms(16, 4, 1);
  const q = randoms(4, 5, 1);
  const empty = attendShared(q, 1, contiguousKeys(k, v, shape), 0, shape);
  assert.deepEqual(empty.lse[0], -Infinity);
  assert.deepEqual([...empty.out], [0, 0, 0, 0]);
  const full = attendShared(q, 1, contiguousKeys(k, v, shape), 4, shape);
  assert.deepEqual([...mergeParts(empty, full, 4).out], [...full.out]);
  assert.deepEqual([...mergeParts(full, empty, 4).out], [...full.out]);
  const none = mergeParts(empty, empty, 4);
  assert.deepEqual([...none.out], [0, 0, 0, 0]);
  assert.deepEqual(none.lse[0], -Infinity);
});

Deno.test("relay: huge logits stay finite and exact", () => {
  const shape: HeadShape = { nHeads: 1, nKvHeads: 1, headDim: 4, scale: 1 };
  const k = randoms(20 * 4, 21, 50);
  const v = randoms(20 * 4, 22, 1);
  const q = randoms(4, 23, 50);
  const want = naive(q, 1, k, v, [20], shape);
  const a = attendShared(q, 1, contiguousKeys(k, v, shape), 9, shape);
  const got = attendKeys(q, 1, contiguousKeys(k, v, shape), 9, [20], shape, a);
  assert(got.out.every(Number.isFinite));
  assert(maxAbsDiff(got.out, want) < 1e-5);
});

Deno.test("relay: mergeParts refuses parts of different shapes", () => {
  const a = { out: new Float32Array(8), lse: new Float32Array(2) };
  const b = { out: new Float32Array(4), lse: new Float32Array(1) };
  assert.throws(() => mergeParts(a, b, 4), RangeError);
});
