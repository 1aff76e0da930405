/**
 * Row-wise kernels: token embedding, RMSNorm (optionally over gathered rows), SwiGLU's
 * `silu(gate) * up`, RoPE fused with the KV-cache write, and greedy sampling (argmax).
 * One workgroup per row; threads stride over the row.
 *
 * @module
 */

import { f, STEP_STRUCT, weightDecl, type WeightType } from "./common.ts";

/** Geometry every attention-side kernel is specialised for. */
export interface AttnGeometry {
  /** Query heads. */
  nHeads: number;
  /** KV heads. */
  nKvHeads: number;
  /** Head width (even, a multiple of 4). */
  headDim: number;
  /** Tokens per KV block. */
  blockSize: number;
  /** Blocks in the pool (the V half of a layer's cache buffer starts after all K). */
  numBlocks: number;
}

/** `x[t, :] = embedding[token[t], :]`; dispatch `rows` workgroups. */
export function embedShader(dim: number, weights: WeightType): string {
  return `${STEP_STRUCT}
const DIM: u32 = ${dim}u;
@group(0) @binding(0) var<storage, read> md: array<u32>;
${weightDecl(1, weights, "emb")}
@group(0) @binding(2) var<storage, read_write> x: array<f32>;
@group(0) @binding(3) var<uniform> step: Step;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let t = wg.x;
  let token = md[t];
  for (var d = lid.x; d < DIM; d += 256u) { x[t * DIM + d] = emb1(token * DIM + d); }
}
`;
}

/**
 * `out[r, :] = w * x[src(r), :] / sqrt(mean(x^2) + eps)`; `src(r)` is `r`, or with
 * `gather` the step's sampled row `r`. Dispatch one workgroup per output row.
 */
export function rmsnormShader(dim: number, eps: number, gather: boolean): string {
  return `${STEP_STRUCT}
const DIM: u32 = ${dim}u;
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> step: Step;
@group(0) @binding(4) var<storage, read> md: array<u32>;
var<workgroup> red: array<f32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let r = wg.x;
  let src = ${gather ? "md[step.sampleOff + r]" : "r"};
  var ss = 0.0;
  for (var d = lid.x; d < DIM; d += 256u) { let v = x[src * DIM + d]; ss += v * v; }
  red[lid.x] = ss;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (lid.x < s) { red[lid.x] += red[lid.x + s]; }
    workgroupBarrier();
  }
  let inv = 1.0 / sqrt(red[0] / f32(DIM) + ${f(eps)});
  for (var d = lid.x; d < DIM; d += 256u) { out[r * DIM + d] = w[d] * (x[src * DIM + d] * inv); }
}
`;
}

/** `h[t, i] = silu(gu[t, i]) * gu[t, hidden + i]`; dispatch `rows` workgroups. */
export function siluMulShader(hidden: number): string {
  return `${STEP_STRUCT}
const HID: u32 = ${hidden}u;
@group(0) @binding(0) var<storage, read> gu: array<f32>;
@group(0) @binding(1) var<storage, read_write> h: array<f32>;
@group(0) @binding(2) var<uniform> step: Step;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let t = wg.x;
  for (var i = lid.x; i < HID; i += 256u) {
    let g = gu[t * 2u * HID + i];
    h[t * HID + i] = g / (1.0 + exp(-g)) * gu[t * 2u * HID + HID + i];
  }
}
`;
}

/**
 * WGSL helpers locating a token's KV row: in the shared relay buffers (positions below
 * the sequence's prefix length) or in the paged pool through the block table.
 */
export function kvRowHelpers(g: AttnGeometry): string {
  return `
const BS: u32 = ${g.blockSize}u;
const KVD: u32 = ${g.nKvHeads * g.headDim}u;
const VOFF: u32 = ${g.numBlocks * g.blockSize * g.nKvHeads * g.headDim}u;
const SHARED_ROW: u32 = 0x80000000u;
// Row of position pos of a sequence: a paged row index, or SHARED_ROW | shared row.
fn kvRow(pos: u32, tableStart: u32, prefixLen: u32) -> u32 {
  if (pos < prefixLen) { return SHARED_ROW | pos; }
  let rel = pos - prefixLen;
  let block = md[step.tableOff + tableStart + rel / BS];
  return block * BS + rel % BS;
}
`;
}

/**
 * RoPE ("rotate half", cos/sin from a table computed on the host in f64) on the q and k
 * heads of each token, in place, then the token's K and V stored in the cache.
 * Dispatch `rows` workgroups.
 */
export function ropeStoreShader(g: AttnGeometry): string {
  const half = g.headDim / 2;
  return `${STEP_STRUCT}
const NH: u32 = ${g.nHeads}u;
const NKV: u32 = ${g.nKvHeads}u;
const HD: u32 = ${g.headDim}u;
const HALF: u32 = ${half}u;
const QKV: u32 = ${(g.nHeads + 2 * g.nKvHeads) * g.headDim}u;
@group(0) @binding(0) var<storage, read_write> qkv: array<f32>;
@group(0) @binding(1) var<storage, read> md: array<u32>;
@group(0) @binding(2) var<uniform> step: Step;
@group(0) @binding(3) var<storage, read> rope: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read_write> cache: array<f32>;
@group(0) @binding(5) var<storage, read_write> sharedK: array<f32>;
@group(0) @binding(6) var<storage, read_write> sharedV: array<f32>;
${kvRowHelpers(g)}
fn storeK(row: u32, i: u32, v: f32) {
  if ((row & SHARED_ROW) != 0u) { sharedK[(row & ~SHARED_ROW) * KVD + i] = v; }
  else { cache[row * KVD + i] = v; }
}
fn storeV(row: u32, i: u32, v: f32) {
  if ((row & SHARED_ROW) != 0u) { sharedV[(row & ~SHARED_ROW) * KVD + i] = v; }
  else { cache[VOFF + row * KVD + i] = v; }
}
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let t = wg.x;
  let pos = md[step.posOff + t];
  let info = step.infoOff + md[step.seqOff + t] * 4u;
  let row = kvRow(pos, md[info], md[info + 1u]);
  for (var i = lid.x; i < (NH + NKV) * HALF; i += 64u) {
    let head = i / HALF;
    let j = i % HALF;
    let base = t * QKV + head * HD;
    let cs = rope[pos * HALF + j];
    let a = qkv[base + j];
    let b = qkv[base + j + HALF];
    let ra = a * cs.x - b * cs.y;
    let rb = b * cs.x + a * cs.y;
    qkv[base + j] = ra;
    qkv[base + j + HALF] = rb;
    if (head >= NH) {
      let off = (head - NH) * HD;
      storeK(row, off + j, ra);
      storeK(row, off + j + HALF, rb);
    }
  }
  for (var i = lid.x; i < NKV * HD; i += 64u) {
    storeV(row, i, qkv[t * QKV + (NH + NKV) * HD + i]);
  }
}
`;
}

/**
 * Greedy sampling: `ids[s]` = index of the largest logit of sampled row `s` (ties: the
 * lowest index; NaN never wins). Dispatch `samples` workgroups.
 */
export function argmaxShader(vocab: number): string {
  return `${STEP_STRUCT}
const V: u32 = ${vocab}u;
@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> ids: array<u32>;
@group(0) @binding(2) var<uniform> step: Step;
var<workgroup> bestV: array<f32, 256>;
var<workgroup> bestI: array<u32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let s = wg.x;
  var bv = -3.4e38;
  var bi = 0xffffffffu;
  for (var i = lid.x; i < V; i += 256u) {
    let v = logits[s * V + i];
    if (v > bv || (bi == 0xffffffffu && v == bv)) { bv = v; bi = i; }
  }
  bestV[lid.x] = bv;
  bestI[lid.x] = bi;
  workgroupBarrier();
  for (var st = 128u; st > 0u; st >>= 1u) {
    if (lid.x < st) {
      let ov = bestV[lid.x + st];
      let oi = bestI[lid.x + st];
      let mv = bestV[lid.x];
      let mi = bestI[lid.x];
      if (oi != 0xffffffffu && (mi == 0xffffffffu || ov > mv || (ov == mv && oi < mi))) {
        bestV[lid.x] = ov;
        bestI[lid.x] = oi;
      }
    }
    workgroupBarrier();
  }
  if (lid.x == 0u) { ids[s] = select(bestI[0], 0u, bestI[0] == 0xffffffffu); }
}
`;
}

/**
 * Decoding ahead: feed each row of the next sub-step the token just sampled for its
 * sequence, on the device. `first`: row `r` takes the id sampled for row
 * `md[feedOff + r]` of the previous pass (positions are already set); otherwise row `r`
 * takes id `r` and moves one position on. Dispatch `ceil(rows / 64)` workgroups.
 */
export function feedShader(first: boolean): string {
  const body = first
    ? "md[r] = ids[md[step.feedOff + r]];"
    : "md[r] = ids[r]; md[step.posOff + r] = md[step.posOff + r] + 1u;";
  return `${STEP_STRUCT}
@group(0) @binding(0) var<storage, read> ids: array<u32>;
@group(0) @binding(1) var<storage, read_write> md: array<u32>;
@group(0) @binding(2) var<uniform> step: Step;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r = gid.x;
  if (r >= step.rows) { return; }
  ${body}
}
`;
}
