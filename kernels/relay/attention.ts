/**
 * RelayAttention math in plain TypeScript, for the reference path of every executor.
 *
 * Attention of one query over keys split into two disjoint sets can be computed per set
 * and fused exactly from each part's output and log-sum-exp (relay spec, section 1(a)):
 * with `M = max(L1, L2)`, `O = (e^(L1-M) O1 + e^(L2-M) O2) / (e^(L1-M) + e^(L2-M))`.
 * RelayAttention uses it to read a shared system prompt's KV once per step for all query
 * tokens (`attendShared`) and each request's own KV separately (`attendKeys`).
 *
 * Layouts: a query block is `[rows, nHeads * headDim]`; an output block has the same
 * shape; log-sum-exps are `[rows, nHeads]`. Query head `h` reads KV head
 * `floor(h / (nHeads / nKvHeads))`. Logits are `scale * <q, k>`, natural-log based.
 *
 * @module
 */

/** Head geometry shared by the attention functions. */
export interface HeadShape {
  /** Query heads. */
  nHeads: number;
  /** Key/value heads (divides `nHeads`). */
  nKvHeads: number;
  /** Width of one head. */
  headDim: number;
  /** Logit scale, usually `1 / sqrt(headDim)`. */
  scale: number;
}

/** Attention output of a block of query rows with its log-sum-exp per (row, head). */
export interface AttentionPart {
  /** `[rows, nHeads * headDim]`. */
  out: Float32Array;
  /** `[rows, nHeads]`; `-Infinity` where a row saw no key. */
  lse: Float32Array;
}

/**
 * Where the keys of one sequence live: `k` and `v` hold rows of `nKvHeads * headDim`
 * floats, and `row(pos)` gives the offset of position `pos`'s row (paged or contiguous).
 */
export interface KeySource {
  /** Key storage. */
  k: Float32Array;
  /** Value storage (same layout as `k`). */
  v: Float32Array;
  /** Offset into `k`/`v` of the row holding position `pos`. */
  row(pos: number): number;
}

/** A contiguous `[length, nKvHeads * headDim]` key source. */
export function contiguousKeys(k: Float32Array, v: Float32Array, shape: HeadShape): KeySource {
  const stride = shape.nKvHeads * shape.headDim;
  return { k, v, row: (pos) => pos * stride };
}

/**
 * A paged key source over a pool `[numBlocks, blockSize, nKvHeads * headDim]`: position
 * `pos` lives in block `blockTable[floor((pos - first) / blockSize)]`. `first` is the
 * position of the table's first slot (the shared-prefix length under RelayAttention).
 */
export function pagedKeys(
  k: Float32Array,
  v: Float32Array,
  shape: HeadShape,
  blockSize: number,
  blockTable: readonly number[],
  first = 0,
): KeySource {
  const stride = shape.nKvHeads * shape.headDim;
  return {
    k,
    v,
    row: (pos) => {
      const p = pos - first;
      const block = blockTable[Math.floor(p / blockSize)];
      return (block * blockSize + (p % blockSize)) * stride;
    },
  };
}

/**
 * Online-softmax attention of one (row, head) over positions `[from, to)` of `src`,
 * optionally seeded with an earlier part (its output and log-sum-exp): seeding with the
 * shared part is the exact fusion folded into the per-request pass (spec 1(f), form b).
 * Writes `headDim` floats at `out[outOff]` and returns the log-sum-exp.
 */
function attendHead(
  q: Float32Array,
  qOff: number,
  src: KeySource,
  kvOff: number,
  from: number,
  to: number,
  shape: HeadShape,
  out: Float32Array,
  outOff: number,
  acc: Float64Array,
  seed?: { out: Float32Array; off: number; lse: number },
): number {
  const d = shape.headDim;
  let m = -Infinity;
  let l = 0;
  acc.fill(0);
  if (seed && seed.lse > -Infinity) {
    // The seed behaves as one virtual key with logit `lse` and value `out`.
    m = seed.lse;
    l = 1;
    for (let i = 0; i < d; i++) acc[i] = seed.out[seed.off + i];
  }
  for (let pos = from; pos < to; pos++) {
    const r = src.row(pos) + kvOff;
    let s = 0;
    for (let i = 0; i < d; i++) s += q[qOff + i] * src.k[r + i];
    s *= shape.scale;
    if (s > m) {
      const c = Math.exp(m - s);
      l *= c;
      for (let i = 0; i < d; i++) acc[i] *= c;
      m = s;
    }
    const p = Math.exp(s - m);
    l += p;
    for (let i = 0; i < d; i++) acc[i] += p * src.v[r + i];
  }
  if (l === 0) {
    for (let i = 0; i < d; i++) out[outOff + i] = 0;
    return -Infinity;
  }
  for (let i = 0; i < d; i++) out[outOff + i] = acc[i] / l;
  return m + Math.log(l);
}

/** Keys per tile of the shared part: a tile's K and V stay in cache for all rows. */
const SHARED_TILE = 64;

/**
 * The shared part of RelayAttention: every query row (all requests' new tokens of the
 * step, stacked) attends to all `length` positions of one contiguous shared KV, with no
 * mask, because every request token comes after the whole shared prompt.
 *
 * The loop runs per KV head over tiles of keys, and each tile serves every query row that
 * reads that head before the next tile is touched: the shared KV is read from memory once
 * per step, which is the point of relay (spec 1(a)). Online softmax keeps it exact.
 */
export function attendShared(
  q: Float32Array,
  rows: number,
  shared: KeySource,
  length: number,
  shape: HeadShape,
): AttentionPart {
  const { nHeads, nKvHeads, headDim: d, scale } = shape;
  const group = nHeads / nKvHeads;
  const out = new Float32Array(rows * nHeads * d);
  const lse = new Float32Array(rows * nHeads).fill(-Infinity);
  const n = rows * group; // query rows per KV head
  const m = new Float64Array(n);
  const l = new Float64Array(n);
  const acc = new Float64Array(n * d);
  const qOff = new Int32Array(n);
  const kOff = new Int32Array(SHARED_TILE);
  const p = new Float64Array(4 * SHARED_TILE);
  for (let kvh = 0; kvh < nKvHeads; kvh++) {
    m.fill(-Infinity);
    l.fill(0);
    acc.fill(0);
    for (let r = 0; r < n; r++) {
      qOff[r] = (Math.floor(r / group) * nHeads + kvh * group + (r % group)) * d;
    }
    for (let p0 = 0; p0 < length; p0 += SHARED_TILE) {
      const count = Math.min(SHARED_TILE, length - p0);
      for (let j = 0; j < count; j++) kOff[j] = shared.row(p0 + j) + kvh * d;
      let r = 0;
      // Four rows at a time: every K and V element loaded serves four queries.
      for (; r + 4 <= n; r += 4) {
        const q0 = qOff[r], q1 = qOff[r + 1], q2 = qOff[r + 2], q3 = qOff[r + 3];
        let x0 = m[r], x1 = m[r + 1], x2 = m[r + 2], x3 = m[r + 3];
        for (let j = 0; j < count; j++) {
          const ko = kOff[j];
          let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
          for (let i = 0; i < d; i++) {
            const kv = shared.k[ko + i];
            s0 += q[q0 + i] * kv;
            s1 += q[q1 + i] * kv;
            s2 += q[q2 + i] * kv;
            s3 += q[q3 + i] * kv;
          }
          s0 *= scale;
          s1 *= scale;
          s2 *= scale;
          s3 *= scale;
          p[j] = s0;
          p[SHARED_TILE + j] = s1;
          p[2 * SHARED_TILE + j] = s2;
          p[3 * SHARED_TILE + j] = s3;
          if (s0 > x0) x0 = s0;
          if (s1 > x1) x1 = s1;
          if (s2 > x2) x2 = s2;
          if (s3 > x3) x3 = s3;
        }
        const mx = [x0, x1, x2, x3];
        for (let k = 0; k < 4; k++) {
          const c = Math.exp(m[r + k] - mx[k]);
          l[r + k] *= c;
          m[r + k] = mx[k];
          if (c !== 1) {
            const a = (r + k) * d;
            for (let i = 0; i < d; i++) acc[a + i] *= c;
          }
        }
        const a0 = r * d, a1 = a0 + d, a2 = a1 + d, a3 = a2 + d;
        for (let j = 0; j < count; j++) {
          const w0 = Math.exp(p[j] - x0);
          const w1 = Math.exp(p[SHARED_TILE + j] - x1);
          const w2 = Math.exp(p[2 * SHARED_TILE + j] - x2);
          const w3 = Math.exp(p[3 * SHARED_TILE + j] - x3);
          l[r] += w0;
          l[r + 1] += w1;
          l[r + 2] += w2;
          l[r + 3] += w3;
          const vo = kOff[j];
          for (let i = 0; i < d; i++) {
            const vv = shared.v[vo + i];
            acc[a0 + i] += w0 * vv;
            acc[a1 + i] += w1 * vv;
            acc[a2 + i] += w2 * vv;
            acc[a3 + i] += w3 * vv;
          }
        }
      }
      for (; r < n; r++) {
        const qo = qOff[r];
        let mx = m[r];
        for (let j = 0; j < count; j++) {
          const ko = kOff[j];
          let s = 0;
          for (let i = 0; i < d; i++) s += q[qo + i] * shared.k[ko + i];
          s *= scale;
          p[j] = s;
          if (s > mx) mx = s;
        }
        const a = r * d;
        const c = Math.exp(m[r] - mx);
        let sum = l[r] * c;
        if (c !== 1) { for (let i = 0; i < d; i++) acc[a + i] *= c; }
        for (let j = 0; j < count; j++) {
          const w = Math.exp(p[j] - mx);
          sum += w;
          const vo = kOff[j];
          for (let i = 0; i < d; i++) acc[a + i] += w * shared.v[vo + i];
        }
        l[r] = sum;
        m[r] = mx;
      }
    }
    for (let r = 0; r < n; r++) {
      if (l[r] === 0) continue;
      const o = qOff[r];
      for (let i = 0; i < d; i++) out[o + i] = acc[r * d + i] / l[r];
      lse[o / d] = m[r] + Math.log(l[r]);
    }
  }
  return { out, lse };
}

/**
 * Causal attention of `rows` query rows of one sequence over its keys: row `i` sees
 * positions `[from, ends[i])`. With `seed`, each (row, head) starts from the seed's
 * output and log-sum-exp, so the result is the exact attention over both key sets.
 */
export function attendKeys(
  q: Float32Array,
  rows: number,
  src: KeySource,
  from: number,
  ends: ArrayLike<number>,
  shape: HeadShape,
  seed?: AttentionPart,
): AttentionPart {
  const { nHeads, headDim } = shape;
  const group = nHeads / shape.nKvHeads;
  const out = new Float32Array(rows * nHeads * headDim);
  const lse = new Float32Array(rows * nHeads);
  const acc = new Float64Array(headDim);
  for (let t = 0; t < rows; t++) {
    for (let h = 0; h < nHeads; h++) {
      const off = (t * nHeads + h) * headDim;
      const kvOff = Math.floor(h / group) * headDim;
      const s = seed ? { out: seed.out, off, lse: seed.lse[t * nHeads + h] } : undefined;
      lse[t * nHeads + h] = attendHead(q, off, src, kvOff, from, ends[t], shape, out, off, acc, s);
    }
  }
  return { out, lse };
}

/**
 * Exact fusion of two attention parts over disjoint key sets (two-way log-sum-exp merge).
 * Safe when either side saw no key (`-Infinity`): the other side is returned; both empty
 * gives zeros, never NaN.
 */
export function mergeParts(a: AttentionPart, b: AttentionPart, headDim: number): AttentionPart {
  const n = a.lse.length;
  if (b.lse.length !== n || a.out.length !== b.out.length || a.out.length !== n * headDim) {
    throw new RangeError("mergeParts: the two parts have different shapes");
  }
  const out = new Float32Array(a.out.length);
  const lse = new Float32Array(n);
  for (let r = 0; r < n; r++) {
    const la = a.lse[r];
    const lb = b.lse[r];
    const m = Math.max(la, lb);
    const off = r * headDim;
    if (m === -Infinity) {
      lse[r] = -Infinity;
      continue;
    }
    const wa = Math.exp(la - m);
    const wb = Math.exp(lb - m);
    const sum = wa + wb;
    for (let i = 0; i < headDim; i++) {
      out[off + i] = (wa * a.out[off + i] + wb * b.out[off + i]) / sum;
    }
    lse[r] = m + Math.log(sum);
  }
  return { out, lse };
}
