// @ts-nocheck: AssemblyScript source (v128, f32, load<T>, ...), compiled by `asc`, not by Deno.
/**
 * AssemblyScript source of the `wasm` executor's kernels: one forward pass of a
 * Llama-family model over a micro-batch of tokens, run by every thread at once over one
 * shared memory. Each thread takes its share of every phase (rows of a weight matrix,
 * (token, head) pairs of attention) and the phases are separated by a barrier in shared
 * memory, so a step costs one wake-up per worker rather than one message per kernel.
 *
 * Everything lives at addresses the host chose and wrote into the model descriptor
 * (`D_*` word indices below, mirrored in `layout.ts`); the module allocates nothing and
 * keeps nothing in memory of its own (only a few per-instance globals used as
 * thread-local scratch), so it is safe to instantiate once per thread.
 *
 * Weight matrices are `[out, in]` row-major with rows padded to a multiple of 8 floats.
 * In bf16 form each group of 8 values `j0..j7` is stored as `j0 j4 j1 j5 j2 j6 j3 j7`, so
 * that one 128-bit load widens to `j0..j3` with a 16-bit left shift and to `j4..j7` with
 * a mask (bf16 is the upper half of an f32).
 *
 * @module
 */

// Model descriptor: i32 words at the address passed to `forward`.
const D_THREADS = 0;
const D_DIM = 1;
const D_DIMP = 2;
const D_HIDP = 3;
const D_LAYERS = 4;
const D_HEADS = 5;
const D_KVHEADS = 6;
const D_HEADDIM = 7;
const D_VOCAB = 8;
const D_BF16 = 9;
const D_BLOCK = 10;
const D_EPS = 11; // f32
const D_SCALE = 12; // f32
const D_QKV = 13; // rows of the fused q/k/v matrix (also the row stride of its output)
// word 14: query width (written by the host, not needed here)
const D_KVDIM = 15;
const D_ATTP = 16;
const D_COS = 17;
const D_SIN = 18;
const D_EMB = 19;
const D_FNORM = 20;
const D_LMHEAD = 21;
const D_LAYERTAB = 22;
const D_X = 23;
const D_XB = 24;
const D_QKVBUF = 25;
const D_ATT = 26;
const D_H13 = 27;
const D_HB = 28;
const D_LOGITS = 29;
const D_SCRATCH = 30;
const D_SCRATCH_STRIDE = 31;
const D_MB = 32;
const D_TOKENS = 33;
const D_POS = 34;
const D_TABLES = 35;
const D_OUTROWS = 36;
const D_T = 37;
const D_NOUT = 38;
const D_SPIN = 39;
const D_ROPEHALF = 40;
const D_PROFILE = 41; // non-zero: thread 0 adds each phase's wall time to D_PROF_SLOTS
const D_PROBE_ADDR = 42; // non-zero: forward is a read-bandwidth probe over all threads
const D_PROBE_BYTES = 43;
const D_BASES = 44; // i32 per token: positions of the shared prompt before its own (relay)
const D_FILL = 45; // non-zero: this pass computes the shared prompt into the shared KV
const D_PROF_SLOTS = 128; // f64 slots, one per phase (P_* below)
const D_BAR_COUNT = 64; // own cache line
const D_BAR_GEN = 80; // own cache line
const D_ABORT = 96;

// Layer record: i32 words.
const L_ATTN_NORM = 0;
const L_WQKV = 1;
const L_WO = 2;
const L_FFN_NORM = 3;
const L_W13 = 4;
const L_W2 = 5;
const L_KCACHE = 6;
const L_VCACHE = 7;
const L_KSHARED = 8; // shared-prompt K, contiguous [relay capacity, kvDim] (RelayAttention)
const L_VSHARED = 9;
const L_WORDS = 10;

// Profile phases.
const P_EMBED = 0;
const P_QKV = 1; // projection, RoPE and the KV-cache store
const P_ATTN = 2;
const P_WO = 3;
const P_FFN_UP = 4;
const P_FFN_DOWN = 5;
const P_LOGITS = 6;

/** Milliseconds from the host's clock; called only while profiling. */
declare function now(): f64;

let profLast: f64 = 0;

/** Thread 0 charges the time since the previous mark to `phase`. */
function mark(d: usize, tid: i32, phase: i32): void {
  if (tid != 0 || rd(d, D_PROFILE) == 0) return;
  const t = now();
  const slotPtr = d + (<usize> D_PROF_SLOTS << 2) + (<usize> phase << 3);
  store<f64>(slotPtr, load<f64>(slotPtr) + (t - profLast));
  profLast = t;
}

function rd(d: usize, i: i32): i32 {
  return load<i32>(d + (<usize> i << 2));
}

function rdf(d: usize, i: i32): f32 {
  return load<f32>(d + (<usize> i << 2));
}

function rdp(d: usize, i: i32): usize {
  return <usize> load<u32>(d + (<usize> i << 2));
}

/** a * b + c, fused where the engine offers relaxed SIMD. */
function fma(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

function hsum(v: v128): f32 {
  const s = f32x4.add(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1);
}

/**
 * Wait until all `n` threads have arrived. Spins for a while (a wake-up through the
 * kernel costs tens of microseconds), then sleeps on the generation word. Traps when the
 * host raised the abort flag (a thread failed), so no thread waits forever.
 */
function barrier(d: usize): void {
  const n = rd(d, D_THREADS);
  if (n <= 1) return;
  const countPtr = d + (<usize> D_BAR_COUNT << 2);
  const genPtr = d + (<usize> D_BAR_GEN << 2);
  const gen = atomic.load<i32>(genPtr);
  if (atomic.add<i32>(countPtr, 1) == n - 1) {
    atomic.store<i32>(countPtr, 0);
    atomic.add<i32>(genPtr, 1);
    atomic.notify(genPtr);
    return;
  }
  const spin = rd(d, D_SPIN);
  let i = 0;
  while (atomic.load<i32>(genPtr) == gen) {
    if (atomic.load<i32>(d + (<usize> D_ABORT << 2)) != 0) unreachable();
    if (i < spin) {
      i++;
    } else {
      memory.atomic.wait32(genPtr, gen, 100_000_000);
    }
  }
}

/** First unit of thread `tid`'s share of `units` units. */
function share(units: i32, tid: i32, n: i32): i32 {
  return <i32> ((<i64> units * tid) / n);
}

// ---------------------------------------------------------------------------------------
// Matrix products. y[t, r] (+)= sum_j w[r, j] * x[t, j] for rows r0..r1 and t < nt;
// k (the padded input width) is a multiple of 8; strides are in elements.
//
// One token (decode): one row at a time, so the weights are read as one sequential
// stream; interleaving several short rows defeats the hardware prefetcher and halves the
// bandwidth from DRAM. Several tokens: blocks of 4 rows x 2 tokens, each weight vector
// loaded once for two tokens (the 4-row block stays in L1 while the tokens go by).

function storeOut(p: usize, v: f32, acc: bool): void {
  if (acc) store<f32>(p, load<f32>(p) + v);
  else store<f32>(p, v);
}

/** One token `x` against rows r0..r1 of f32 weights (`kb` bytes a row). */
function rowsF32(w: usize, kb: usize, x: usize, y: usize, r0: i32, r1: i32, acc: bool): void {
  for (let r = r0; r < r1; r++) {
    const wr = w + <usize> r * kb;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let j: usize = 0;
    for (; j + 64 <= kb; j += 64) {
      a0 = fma(v128.load(wr + j), v128.load(x + j), a0);
      a1 = fma(v128.load(wr + j + 16), v128.load(x + j + 16), a1);
      a2 = fma(v128.load(wr + j + 32), v128.load(x + j + 32), a2);
      a3 = fma(v128.load(wr + j + 48), v128.load(x + j + 48), a3);
    }
    for (; j < kb; j += 32) {
      a0 = fma(v128.load(wr + j), v128.load(x + j), a0);
      a1 = fma(v128.load(wr + j + 16), v128.load(x + j + 16), a1);
    }
    storeOut(y + (<usize> r << 2), hsum(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3))), acc);
  }
}

function matF32(
  w: usize,
  k: i32,
  x: usize,
  ldx: i32,
  nt: i32,
  y: usize,
  ldy: i32,
  r0: i32,
  r1: i32,
  acc: bool,
): void {
  const kb = <usize> k << 2;
  const xs = <usize> ldx << 2;
  const ys = <usize> ldy << 2;
  if (nt == 1) {
    rowsF32(w, kb, x, y, r0, r1, acc);
    return;
  }
  let r = r0;
  for (; r + 4 <= r1; r += 4) {
    const w0 = w + <usize> r * kb;
    const w1 = w0 + kb;
    const w2 = w1 + kb;
    const w3 = w2 + kb;
    let t = 0;
    for (; t + 2 <= nt; t += 2) {
      const xa = x + <usize> t * xs;
      const xb = xa + xs;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
      for (let j: usize = 0; j < kb; j += 16) {
        const va = v128.load(xa + j);
        const vb = v128.load(xb + j);
        const u0 = v128.load(w0 + j);
        a0 = fma(u0, va, a0);
        b0 = fma(u0, vb, b0);
        const u1 = v128.load(w1 + j);
        a1 = fma(u1, va, a1);
        b1 = fma(u1, vb, b1);
        const u2 = v128.load(w2 + j);
        a2 = fma(u2, va, a2);
        b2 = fma(u2, vb, b2);
        const u3 = v128.load(w3 + j);
        a3 = fma(u3, va, a3);
        b3 = fma(u3, vb, b3);
      }
      const ya = y + <usize> t * ys + (<usize> r << 2);
      const yb = ya + ys;
      storeOut(ya, hsum(a0), acc);
      storeOut(ya + 4, hsum(a1), acc);
      storeOut(ya + 8, hsum(a2), acc);
      storeOut(ya + 12, hsum(a3), acc);
      storeOut(yb, hsum(b0), acc);
      storeOut(yb + 4, hsum(b1), acc);
      storeOut(yb + 8, hsum(b2), acc);
      storeOut(yb + 12, hsum(b3), acc);
    }
    if (t < nt) rowsF32(w, kb, x + <usize> t * xs, y + <usize> t * ys, r, r + 4, acc);
  }
  if (r < r1) {
    for (let t = 0; t < nt; t++) rowsF32(w, kb, x + <usize> t * xs, y + <usize> t * ys, r, r1, acc);
  }
}

const HI_MASK: v128 = i32x4(0xffff0000, 0xffff0000, 0xffff0000, 0xffff0000);

/** Values j0..j3 of a bf16 group of 8 (stored j0 j4 j1 j5 j2 j6 j3 j7) as f32. */
function lo16(v: v128): v128 {
  return i32x4.shl(v, 16);
}

/** Values j4..j7 of the group as f32. */
function hi16(v: v128): v128 {
  return v128.and(v, HI_MASK);
}

/**
 * One token `x` against rows r0..r1 of bf16 weights (`kb` bytes a row). Widening costs
 * one operation per 4 weights, so this loop is bound by instructions rather than memory:
 * eight accumulators and 64 bytes a turn keep it near its best.
 */
function rowsBf16(w: usize, kb: usize, x: usize, y: usize, r0: i32, r1: i32, acc: bool): void {
  const m = i32x4.splat(0xffff0000);
  for (let r = r0; r < r1; r++) {
    const wr = w + <usize> r * kb;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let a4 = f32x4.splat(0), a5 = f32x4.splat(0), a6 = f32x4.splat(0), a7 = f32x4.splat(0);
    let j: usize = 0;
    for (; j + 64 <= kb; j += 64) {
      const u0 = v128.load(wr + j);
      const u1 = v128.load(wr + j + 16);
      const u2 = v128.load(wr + j + 32);
      const u3 = v128.load(wr + j + 48);
      const xo = x + (j << 1);
      a0 = fma(i32x4.shl(u0, 16), v128.load(xo), a0);
      a1 = fma(v128.and(u0, m), v128.load(xo + 16), a1);
      a2 = fma(i32x4.shl(u1, 16), v128.load(xo + 32), a2);
      a3 = fma(v128.and(u1, m), v128.load(xo + 48), a3);
      a4 = fma(i32x4.shl(u2, 16), v128.load(xo + 64), a4);
      a5 = fma(v128.and(u2, m), v128.load(xo + 80), a5);
      a6 = fma(i32x4.shl(u3, 16), v128.load(xo + 96), a6);
      a7 = fma(v128.and(u3, m), v128.load(xo + 112), a7);
    }
    for (; j < kb; j += 16) {
      const u = v128.load(wr + j);
      const xo = x + (j << 1);
      a0 = fma(i32x4.shl(u, 16), v128.load(xo), a0);
      a1 = fma(v128.and(u, m), v128.load(xo + 16), a1);
    }
    const s = f32x4.add(
      f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)),
      f32x4.add(f32x4.add(a4, a5), f32x4.add(a6, a7)),
    );
    storeOut(y + (<usize> r << 2), hsum(s), acc);
  }
}

function matBf16(
  w: usize,
  k: i32,
  x: usize,
  ldx: i32,
  nt: i32,
  y: usize,
  ldy: i32,
  r0: i32,
  r1: i32,
  acc: bool,
): void {
  const kb = <usize> k << 1; // bytes of one weight row
  const xs = <usize> ldx << 2;
  const ys = <usize> ldy << 2;
  if (nt == 1) {
    rowsBf16(w, kb, x, y, r0, r1, acc);
    return;
  }
  let r = r0;
  for (; r + 4 <= r1; r += 4) {
    const w0 = w + <usize> r * kb;
    const w1 = w0 + kb;
    const w2 = w1 + kb;
    const w3 = w2 + kb;
    let t = 0;
    for (; t + 2 <= nt; t += 2) {
      const xa = x + <usize> t * xs;
      const xb = xa + xs;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
      for (let j: usize = 0; j < kb; j += 16) {
        const xo = j << 1;
        const va = v128.load(xa + xo);
        const vA = v128.load(xa + xo + 16);
        const vb = v128.load(xb + xo);
        const vB = v128.load(xb + xo + 16);
        const u0 = v128.load(w0 + j);
        a0 = fma(hi16(u0), vA, fma(lo16(u0), va, a0));
        b0 = fma(hi16(u0), vB, fma(lo16(u0), vb, b0));
        const u1 = v128.load(w1 + j);
        a1 = fma(hi16(u1), vA, fma(lo16(u1), va, a1));
        b1 = fma(hi16(u1), vB, fma(lo16(u1), vb, b1));
        const u2 = v128.load(w2 + j);
        a2 = fma(hi16(u2), vA, fma(lo16(u2), va, a2));
        b2 = fma(hi16(u2), vB, fma(lo16(u2), vb, b2));
        const u3 = v128.load(w3 + j);
        a3 = fma(hi16(u3), vA, fma(lo16(u3), va, a3));
        b3 = fma(hi16(u3), vB, fma(lo16(u3), vb, b3));
      }
      const ya = y + <usize> t * ys + (<usize> r << 2);
      const yb = ya + ys;
      storeOut(ya, hsum(a0), acc);
      storeOut(ya + 4, hsum(a1), acc);
      storeOut(ya + 8, hsum(a2), acc);
      storeOut(ya + 12, hsum(a3), acc);
      storeOut(yb, hsum(b0), acc);
      storeOut(yb + 4, hsum(b1), acc);
      storeOut(yb + 8, hsum(b2), acc);
      storeOut(yb + 12, hsum(b3), acc);
    }
    if (t < nt) rowsBf16(w, kb, x + <usize> t * xs, y + <usize> t * ys, r, r + 4, acc);
  }
  if (r < r1) {
    for (let t = 0; t < nt; t++) {
      rowsBf16(w, kb, x + <usize> t * xs, y + <usize> t * ys, r, r1, acc);
    }
  }
}

/** This thread's share of `w @ x`, split over rows in units of `unit` rows. */
function matmul(
  d: usize,
  tid: i32,
  w: usize,
  rows: i32,
  k: i32,
  x: usize,
  ldx: i32,
  nt: i32,
  y: usize,
  ldy: i32,
  unit: i32,
  acc: bool,
): void {
  const n = rd(d, D_THREADS);
  const units = (rows + unit - 1) / unit;
  const r0 = share(units, tid, n) * unit;
  const r1 = min(rows, share(units, tid + 1, n) * unit);
  if (r0 < r1) matRange(d, w, k, x, ldx, nt, y, ldy, r0, r1, acc);
}

/** Rows r0..r1 of `w @ x` in the model's weight format. */
function matRange(
  d: usize,
  w: usize,
  k: i32,
  x: usize,
  ldx: i32,
  nt: i32,
  y: usize,
  ldy: i32,
  r0: i32,
  r1: i32,
  acc: bool,
): void {
  if (rd(d, D_BF16) != 0) matBf16(w, k, x, ldx, nt, y, ldy, r0, r1, acc);
  else matF32(w, k, x, ldx, nt, y, ldy, r0, r1, acc);
}

// ---------------------------------------------------------------------------------------
// Element-wise kernels.

/** RMSNorm of `nt` rows of `x` (listed by `rows` when non-zero, else 0..nt) into `out`. */
function rmsnorm(d: usize, x: usize, w: usize, out: usize, nt: i32, rowsPtr: usize): void {
  const dim = rd(d, D_DIM);
  const ld = <usize> rd(d, D_DIMP) << 2;
  const eps = rdf(d, D_EPS);
  for (let t = 0; t < nt; t++) {
    const src = rowsPtr != 0 ? <usize> load<i32>(rowsPtr + (<usize> t << 2)) : <usize> t;
    const xr = x + src * ld;
    const o = out + <usize> t * ld;
    let ss = f32x4.splat(0);
    let j = 0;
    for (; j + 4 <= dim; j += 4) {
      const v = v128.load(xr + (<usize> j << 2));
      ss = fma(v, v, ss);
    }
    let s = hsum(ss);
    for (; j < dim; j++) {
      const v = load<f32>(xr + (<usize> j << 2));
      s += v * v;
    }
    const inv = <f32> (1.0 / Math.sqrt(<f64> s / <f64> dim + <f64> eps));
    const vi = f32x4.splat(inv);
    j = 0;
    for (; j + 4 <= dim; j += 4) {
      const p = <usize> j << 2;
      v128.store(o + p, f32x4.mul(v128.load(w + p), f32x4.mul(v128.load(xr + p), vi)));
    }
    for (; j < dim; j++) {
      const p = <usize> j << 2;
      store<f32>(o + p, load<f32>(w + p) * (load<f32>(xr + p) * inv));
    }
  }
}

/**
 * Embedding rows of all tokens into the residual stream. Every thread writes all of them
 * (the same values), so no barrier is needed before it reads them; nothing else writes
 * the stream before the next barrier.
 */
function embed(d: usize, nt: i32): void {
  const dimp = rd(d, D_DIMP);
  const emb = rdp(d, D_EMB);
  const x = rdp(d, D_X);
  const tokens = rdp(d, D_TOKENS);
  const bf16 = rd(d, D_BF16) != 0;
  for (let t = 0; t < nt; t++) {
    const tok = <usize> load<i32>(tokens + (<usize> t << 2));
    const dst = x + <usize> t * (<usize> dimp << 2);
    if (bf16) {
      const src = emb + tok * (<usize> dimp << 1);
      for (let j: usize = 0; j < (<usize> dimp << 1); j += 16) {
        const u = v128.load(src + j);
        v128.store(dst + (j << 1), lo16(u));
        v128.store(dst + (j << 1) + 16, hi16(u));
      }
    } else {
      memory.copy(dst, emb + tok * (<usize> dimp << 2), <usize> dimp << 2);
    }
  }
}

function ropeHeads(d: usize, v: usize, heads: i32, pos: i32): void {
  const hd = rd(d, D_HEADDIM);
  const half = hd >> 1;
  const tabOff = <usize> pos * (<usize> rd(d, D_ROPEHALF) << 2);
  const cosT = rdp(d, D_COS) + tabOff;
  const sinT = rdp(d, D_SIN) + tabOff;
  for (let h = 0; h < heads; h++) {
    const base = v + (<usize> (h * hd) << 2);
    const hb = base + (<usize> half << 2);
    let i = 0;
    for (; i + 4 <= half; i += 4) {
      const p = <usize> i << 2;
      const a = v128.load(base + p);
      const b = v128.load(hb + p);
      const c = v128.load(cosT + p);
      const s = v128.load(sinT + p);
      v128.store(base + p, f32x4.sub(f32x4.mul(a, c), f32x4.mul(b, s)));
      v128.store(hb + p, f32x4.add(f32x4.mul(b, c), f32x4.mul(a, s)));
    }
    for (; i < half; i++) {
      const p = <usize> i << 2;
      const a = load<f32>(base + p);
      const b = load<f32>(hb + p);
      const c = load<f32>(cosT + p);
      const s = load<f32>(sinT + p);
      store<f32>(base + p, a * c - b * s);
      store<f32>(hb + p, b * c + a * s);
    }
  }
}

/** Address of position `pos`'s vector in a paged cache through a block table. */
function slot(d: usize, cache: usize, table: usize, pos: i32): usize {
  const bs = rd(d, D_BLOCK);
  const block = load<i32>(table + (<usize> (pos / bs) << 2));
  const row = <usize> block * <usize> bs + <usize> (pos % bs);
  return cache + row * (<usize> rd(d, D_KVDIM) << 2);
}

/**
 * This thread's heads of the fused q/k/v projection (whole heads, so it can finish them):
 * the product, RoPE on q and k heads, and K and V heads into the paged cache.
 */
function qkvPhase(d: usize, tid: i32, nt: i32, layer: usize, xb: usize, fill: bool): void {
  const n = rd(d, D_THREADS);
  const hd = rd(d, D_HEADDIM);
  const heads = rd(d, D_HEADS);
  const kvHeads = rd(d, D_KVHEADS);
  const units = heads + 2 * kvHeads;
  const u0 = share(units, tid, n);
  const u1 = share(units, tid + 1, n);
  if (u0 >= u1) return;
  const qkv = rdp(d, D_QKVBUF);
  const rows = rd(d, D_QKV);
  const dimp = rd(d, D_DIMP);
  matRange(d, rdp(layer, L_WQKV), dimp, xb, dimp, nt, qkv, rows, u0 * hd, u1 * hd, false);
  const ld = <usize> rows << 2;
  const headBytes = <usize> hd << 2;
  const pos = rdp(d, D_POS);
  const tables = rdp(d, D_TABLES);
  const bases = rdp(d, D_BASES);
  const kc = fill ? rdp(layer, L_KSHARED) : rdp(layer, L_KCACHE);
  const vc = fill ? rdp(layer, L_VSHARED) : rdp(layer, L_VCACHE);
  for (let t = 0; t < nt; t++) {
    const p = load<i32>(pos + (<usize> t << 2));
    // RoPE at the absolute position; the cache slot counts from after a shared prompt.
    const at = p - load<i32>(bases + (<usize> t << 2));
    const table = <usize> load<u32>(tables + (<usize> t << 2));
    const row = qkv + <usize> t * ld;
    for (let u = u0; u < u1; u++) {
      const v = row + <usize> u * headBytes;
      if (u < heads) {
        ropeHeads(d, v, 1, p);
      } else if (u < heads + kvHeads) {
        ropeHeads(d, v, 1, p);
        memory.copy(slot(d, kc, table, at) + <usize> (u - heads) * headBytes, v, headBytes);
      } else {
        memory.copy(
          slot(d, vc, table, at) + <usize> (u - heads - kvHeads) * headBytes,
          v,
          headBytes,
        );
      }
    }
  }
}

function dot(a: usize, b: usize, n: i32): f32 {
  let s = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    s = fma(v128.load(a + (<usize> i << 2)), v128.load(b + (<usize> i << 2)), s);
  }
  let r = hsum(s);
  for (; i < n; i++) r += load<f32>(a + (<usize> i << 2)) * load<f32>(b + (<usize> i << 2));
  return r;
}

/** acc[i] = acc[i] * c + p * v[i] for i < n. */
function axpby(acc: usize, c: f32, p: f32, v: usize, n: i32): void {
  const vc = f32x4.splat(c);
  const vp = f32x4.splat(p);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize> i << 2;
    v128.store(acc + o, fma(vp, v128.load(v + o), f32x4.mul(v128.load(acc + o), vc)));
  }
  for (; i < n; i++) {
    const o = <usize> i << 2;
    store<f32>(acc + o, load<f32>(acc + o) * c + p * load<f32>(v + o));
  }
}

// Online-softmax state of the (token, head) pair being computed (one instance per thread).
let attnMax: f32 = -Infinity;
let attnSum: f32 = 0;

/**
 * Fold `cnt` keys at `k` (and values at `v`, `stride` bytes apart) into the output `out`
 * of query `q`: scores, then the running max and sum, rescaled when the max grows.
 */
function attendBlock(
  q: usize,
  k: usize,
  v: usize,
  stride: usize,
  cnt: i32,
  hd: i32,
  scale: f32,
  scores: usize,
  out: usize,
): void {
  let i = 0;
  if ((hd & 3) == 0) {
    // Four keys at a time: q is loaded once for four dot products and one transposing
    // reduction replaces four horizontal sums.
    const vs = f32x4.splat(scale);
    for (; i + 4 <= cnt; i += 4) {
      v128.store(
        scores + (<usize> i << 2),
        f32x4.mul(dot4(q, k + <usize> i * stride, stride, hd), vs),
      );
    }
  }
  for (; i < cnt; i++) {
    store<f32>(scores + (<usize> i << 2), dot(q, k + <usize> i * stride, hd) * scale);
  }
  let bm: f32 = -Infinity;
  for (i = 0; i < cnt; i++) bm = max(bm, load<f32>(scores + (<usize> i << 2)));
  const mNew = max(attnMax, bm);
  let c = Mathf.exp(attnMax - mNew); // 0 on the first block (max = -inf)
  attnSum *= c;
  i = 0;
  for (; i + 2 <= cnt; i += 2) {
    const e0 = Mathf.exp(load<f32>(scores + (<usize> i << 2)) - mNew);
    const e1 = Mathf.exp(load<f32>(scores + (<usize> (i + 1) << 2)) - mNew);
    attnSum += e0 + e1;
    const v0 = v + <usize> i * stride;
    axpy2(out, c, e0, v0, e1, v0 + stride, hd);
    c = 1;
  }
  if (i < cnt) {
    const e = Mathf.exp(load<f32>(scores + (<usize> i << 2)) - mNew);
    attnSum += e;
    axpby(out, c, e, v + <usize> i * stride, hd);
  }
  attnMax = mNew;
}

/** Dot products of `q` with the four keys at `k`, `k + stride`, ... (`n` a multiple of 4). */
function dot4(q: usize, k: usize, stride: usize, n: i32): v128 {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  const nb = <usize> n << 2;
  for (let j: usize = 0; j < nb; j += 16) {
    const qv = v128.load(q + j);
    a0 = fma(qv, v128.load(k + j), a0);
    a1 = fma(qv, v128.load(k + stride + j), a1);
    a2 = fma(qv, v128.load(k + 2 * stride + j), a2);
    a3 = fma(qv, v128.load(k + 3 * stride + j), a3);
  }
  // Transpose-and-add: lane i of the result is the sum of the lanes of a_i.
  const s01 = f32x4.add(
    v128.shuffle<f32>(a0, a1, 0, 4, 1, 5),
    v128.shuffle<f32>(a0, a1, 2, 6, 3, 7),
  );
  const s23 = f32x4.add(
    v128.shuffle<f32>(a2, a3, 0, 4, 1, 5),
    v128.shuffle<f32>(a2, a3, 2, 6, 3, 7),
  );
  return f32x4.add(
    v128.shuffle<f32>(s01, s23, 0, 1, 4, 5),
    v128.shuffle<f32>(s01, s23, 2, 3, 6, 7),
  );
}

/** acc[i] = acc[i] * c + p0 * v0[i] + p1 * v1[i] for i < n. */
function axpy2(acc: usize, c: f32, p0: f32, v0: usize, p1: f32, v1: usize, n: i32): void {
  const vc = f32x4.splat(c);
  const w0 = f32x4.splat(p0);
  const w1 = f32x4.splat(p1);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize> i << 2;
    const a = f32x4.mul(v128.load(acc + o), vc);
    v128.store(acc + o, fma(w1, v128.load(v1 + o), fma(w0, v128.load(v0 + o), a)));
  }
  for (; i < n; i++) {
    const o = <usize> i << 2;
    store<f32>(acc + o, load<f32>(acc + o) * c + p0 * load<f32>(v0 + o) + p1 * load<f32>(v1 + o));
  }
}

/**
 * Causal attention for this thread's (token, head) pairs: the token at position `p`
 * attends to positions `0..=p` of its sequence, one KV block at a time with an online
 * softmax. After a shared prompt of `b` positions (RelayAttention), positions `0..b-1`
 * are read from the contiguous shared KV and the rest through the block table from slot
 * 0 on; the online softmax makes the two parts one exact softmax.
 */
function attention(d: usize, tid: i32, nt: i32, layer: usize, fill: bool): void {
  const n = rd(d, D_THREADS);
  const heads = rd(d, D_HEADS);
  const group = heads / rd(d, D_KVHEADS);
  const hd = rd(d, D_HEADDIM);
  const bs = rd(d, D_BLOCK);
  const kvStride = <usize> rd(d, D_KVDIM) << 2;
  const scale = rdf(d, D_SCALE);
  const qkv = rdp(d, D_QKVBUF);
  const ldq = <usize> rd(d, D_QKV) << 2;
  const att = rdp(d, D_ATT);
  const ldo = <usize> rd(d, D_ATTP) << 2;
  const pos = rdp(d, D_POS);
  const bases = rdp(d, D_BASES);
  const tables = rdp(d, D_TABLES);
  const kc = fill ? rdp(layer, L_KSHARED) : rdp(layer, L_KCACHE);
  const vc = fill ? rdp(layer, L_VSHARED) : rdp(layer, L_VCACHE);
  const ks = rdp(layer, L_KSHARED);
  const vs = rdp(layer, L_VSHARED);
  const scores = rdp(d, D_SCRATCH) + <usize> tid * rdp(d, D_SCRATCH_STRIDE);
  const items = nt * heads;
  for (let it = share(items, tid, n); it < share(items, tid + 1, n); it++) {
    const t = it / heads;
    const h = it % heads;
    const p = load<i32>(pos + (<usize> t << 2));
    const shared = load<i32>(bases + (<usize> t << 2));
    const table = <usize> load<u32>(tables + (<usize> t << 2));
    const q = qkv + <usize> t * ldq + (<usize> (h * hd) << 2);
    const headOff = <usize> ((h / group) * hd) << 2;
    const out = att + <usize> t * ldo + (<usize> (h * hd) << 2);
    memory.fill(out, 0, <usize> hd << 2);
    attnMax = -Infinity;
    attnSum = 0;
    for (let b = 0; b < shared; b += bs) {
      const off = <usize> b * kvStride + headOff;
      attendBlock(q, ks + off, vs + off, kvStride, min(bs, shared - b), hd, scale, scores, out);
    }
    const own = p + 1 - shared; // positions in the block table
    for (let b = 0; b * bs < own; b++) {
      const block = <usize> load<i32>(table + (<usize> b << 2));
      const off = block * <usize> bs * kvStride + headOff;
      attendBlock(q, kc + off, vc + off, kvStride, min(bs, own - b * bs), hd, scale, scores, out);
    }
    const l = attnSum;
    const inv = f32x4.splat(1 / l);
    let i = 0;
    for (; i + 4 <= hd; i += 4) {
      const o = out + (<usize> i << 2);
      v128.store(o, f32x4.mul(v128.load(o), inv));
    }
    for (; i < hd; i++) {
      const o = out + (<usize> i << 2);
      store<f32>(o, load<f32>(o) / l);
    }
  }
}

/** hb[t, i] = silu(h1) * h3 for this thread's row units (w1 and w3 rows interleaved by 4). */
function swiglu(d: usize, tid: i32, nt: i32): void {
  const n = rd(d, D_THREADS);
  const hidp = rd(d, D_HIDP);
  const h13 = rdp(d, D_H13);
  const hb = rdp(d, D_HB);
  const units = hidp >> 2;
  const u0 = share(units, tid, n);
  const u1 = share(units, tid + 1, n);
  for (let t = 0; t < nt; t++) {
    const src = h13 + <usize> t * (<usize> hidp << 3);
    const dst = hb + <usize> t * (<usize> hidp << 2);
    for (let u = u0; u < u1; u++) {
      const g = src + (<usize> u << 5);
      for (let i = 0; i < 4; i++) {
        const a = load<f32>(g + (<usize> i << 2));
        const b = load<f32>(g + 16 + (<usize> i << 2));
        store<f32>(dst + (<usize> (u * 4 + i) << 2), (a / (1 + Mathf.exp(-a))) * b);
      }
    }
  }
}

/**
 * One forward pass of the current micro-batch (`D_T` tokens) by thread `tid`; every
 * thread calls it with the same descriptor. Leaves the logits of the `D_NOUT` rows listed
 * at `D_OUTROWS` at `D_LOGITS` (`[nOut, vocab]`). Returns when all threads are done.
 */
export function forward(d: usize, tid: i32): void {
  // Read the step's sizes now: once a thread is past the last barrier the host may
  // already be writing the next micro-batch's.
  const nt = rd(d, D_T);
  const nOut = rd(d, D_NOUT);
  const fill = rd(d, D_FILL) != 0;
  const probe = rdp(d, D_PROBE_ADDR);
  if (probe != 0) {
    // Each thread sums its share (in 64-byte units); the result is stored so that it is
    // not optimised away.
    const n = rd(d, D_THREADS);
    const units = rd(d, D_PROBE_BYTES) >> 6;
    const b0 = <usize> share(units, tid, n) << 6;
    const b1 = <usize> share(units, tid + 1, n) << 6;
    const sum = readProbe(probe + b0, b1 - b0);
    store<f32>(rdp(d, D_SCRATCH) + <usize> tid * rdp(d, D_SCRATCH_STRIDE), sum);
    barrier(d);
    return;
  }
  const dim = rd(d, D_DIM);
  const dimp = rd(d, D_DIMP);
  const hidp = rd(d, D_HIDP);
  const x = rdp(d, D_X);
  const xb = rdp(d, D_XB) + <usize> tid * (<usize> rd(d, D_MB) * (<usize> dimp << 2));
  const att = rdp(d, D_ATT);
  const attp = rd(d, D_ATTP);
  const h13 = rdp(d, D_H13);
  const hb = rdp(d, D_HB);
  const nLayers = rd(d, D_LAYERS);
  if (tid == 0 && rd(d, D_PROFILE) != 0) profLast = now();
  if (nt > 0) {
    embed(d, nt);
    mark(d, tid, P_EMBED);
  }
  for (let l = 0; l < nLayers && nt > 0; l++) {
    const layer = rdp(d, D_LAYERTAB) + (<usize> (l * L_WORDS) << 2);
    // Each thread normalises all rows for itself: cheaper than a barrier.
    rmsnorm(d, x, rdp(layer, L_ATTN_NORM), xb, nt, 0);
    qkvPhase(d, tid, nt, layer, xb, fill);
    barrier(d);
    mark(d, tid, P_QKV);
    attention(d, tid, nt, layer, fill);
    barrier(d);
    mark(d, tid, P_ATTN);
    matmul(d, tid, rdp(layer, L_WO), dim, attp, att, attp, nt, x, dimp, 4, true);
    barrier(d);
    mark(d, tid, P_WO);
    rmsnorm(d, x, rdp(layer, L_FFN_NORM), xb, nt, 0);
    matmul(d, tid, rdp(layer, L_W13), hidp << 1, dimp, xb, dimp, nt, h13, hidp << 1, 8, false);
    swiglu(d, tid, nt);
    barrier(d);
    mark(d, tid, P_FFN_UP);
    matmul(d, tid, rdp(layer, L_W2), dim, hidp, hb, hidp, nt, x, dimp, 4, true);
    barrier(d);
    mark(d, tid, P_FFN_DOWN);
  }
  if (nOut > 0) {
    const vocab = rd(d, D_VOCAB);
    rmsnorm(d, x, rdp(d, D_FNORM), xb, nOut, rdp(d, D_OUTROWS));
    matmul(
      d,
      tid,
      rdp(d, D_LMHEAD),
      vocab,
      dimp,
      xb,
      dimp,
      nOut,
      rdp(d, D_LOGITS),
      vocab,
      4,
      false,
    );
    barrier(d);
    mark(d, tid, P_LOGITS);
  }
}

/**
 * Index of the largest of `n` floats at `p` (ties to the lower index, NaN never wins),
 * for greedy decoding without copying logits out.
 */
export function argmax(p: usize, n: i32): i32 {
  let best = 0;
  let bv: f32 = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = load<f32>(p + (<usize> i << 2));
    if (v > bv) {
      bv = v;
      best = i;
    }
  }
  return best;
}

/** Copy-bandwidth probe: copies `bytes` from `src` to `dst` `reps` times. */
export function copyProbe(dst: usize, src: usize, bytes: usize, reps: i32): void {
  for (let r = 0; r < reps; r++) memory.copy(dst, src, bytes);
}

/** Read-bandwidth probe: sums `bytes` (a multiple of 64) at `src` as floats. */
export function readProbe(src: usize, bytes: usize): f32 {
  let a = f32x4.splat(0), b = f32x4.splat(0), c = f32x4.splat(0), e = f32x4.splat(0);
  for (let j: usize = 0; j < bytes; j += 64) {
    a = f32x4.add(a, v128.load(src + j));
    b = f32x4.add(b, v128.load(src + j + 16));
    c = f32x4.add(c, v128.load(src + j + 32));
    e = f32x4.add(e, v128.load(src + j + 48));
  }
  return hsum(f32x4.add(f32x4.add(a, b), f32x4.add(c, e)));
}
