/**
 * Attention kernels, online softmax in f32 (relay spec, 1(f)).
 *
 * - `pagedAttentionShader`: one workgroup per (token, query head). The token at position
 *   `p` attends to positions `from ..= p` of its sequence through the block table
 *   (decodes and prefill chunks alike: this step's K/V are already stored). Mode 1
 *   sequences (relay) start from the system part's output and log-sum-exp, the seeded
 *   form of the exact fusion, and skip the shared positions; mode 2 sequences read the
 *   shared positions themselves (the gate's fallback, and the relay prompt's own fill).
 *   Writes the output and its log-sum-exp.
 * - `sharedAttentionShader`: the RelayAttention system part. All query rows of the step
 *   that map to one KV head are tiled 16 at a time; every tile of shared K/V is staged in
 *   workgroup memory once and used by all 16 rows, with no mask (every request token sits
 *   after the whole shared prompt).
 *
 * The paged kernel's output holds `[rows, nHeads, headDim]` outputs followed by
 * `[rows, nHeads]` log-sum-exps (`lseOffset` floats in). The system part is split over
 * key ranges so that long prompts spread over many workgroups (flash-decoding style);
 * split `z` writes `[rows, nHeads, headDim + 1]` (output then log-sum-exp) at
 * `z * rows * nHeads * (headDim + 1)`, and the paged kernel folds the splits in.
 *
 * @module
 */

import { f, NEG_BIG, STEP_STRUCT } from "./common.ts";
import { type AttnGeometry, kvRowHelpers } from "./elementwise.ts";

/** Threads of the paged kernel (keys scored per chunk). */
const WG = 64;

/**
 * Query rows of one system-part tile: the shared keys are read once per tile, so a step
 * with more than 16 rows per KV head takes the 32-row tile (read once for up to 32 rows:
 * at B = 32 the prompt is read once, not twice, which the IO bound assumes), where the
 * workgroup memory holds it.
 */
export const SHARED_TILES = [16, 32] as const;

/** The tile for `rows` query rows per KV head, among those `available`. */
export function sharedTile(rows: number, available: readonly number[]): number {
  let tq = available[0];
  for (const t of available) if (rows > tq && t > tq) tq = t;
  return tq;
}

/** Keys per split of the system part: enough splits to keep a large GPU busy. */
export const SPLIT_KEYS = 256;

/**
 * How many key ranges the system part of `rows` query rows over `len` shared keys is
 * split into, given room for `capacity` floats of partial results.
 */
export function sharedSplits(len: number, rows: number, g: AttnGeometry, capacity: number): number {
  const per = rows * g.nHeads * (g.headDim + 1);
  return Math.max(1, Math.min(64, Math.ceil(len / SPLIT_KEYS), Math.floor(capacity / per)));
}

/**
 * Keys per staged tile of the system part with `tq` query rows that fit the workgroup
 * memory (0 when not even one does).
 */
export function sharedTileKeys(headDim: number, workgroupBytes: number, tq: number): number {
  const floats = Math.floor(workgroupBytes / 4);
  let tk = 32;
  while (tk > 0 && tq * headDim + tk * (2 * headDim + 1) + tq * tk > floats) tk = tk >> 1;
  return tk;
}

/** Keys per chunk of the paged kernel whose staged K rows fit the workgroup memory. */
export function pagedChunkKeys(headDim: number, workgroupBytes: number): number {
  const floats = Math.floor(workgroupBytes / 4) - headDim - 8;
  let kc = WG;
  while (kc > 1 && kc * (headDim + 3) > floats) kc /= 2;
  return kc;
}

/**
 * The per-request (paged) kernel; dispatch `(rows, nHeads)` workgroups. Keys are taken in
 * chunks (see {@link pagedChunkKeys}) whose K rows are staged in workgroup memory with
 * coalesced loads; each thread then scores one key and accumulates its share of the
 * output's dimensions.
 */
export function pagedAttentionShader(
  g: AttnGeometry,
  lseOffset: number,
  workgroupBytes: number,
): string {
  const per = Math.ceil(g.headDim / WG);
  const kc = pagedChunkKeys(g.headDim, workgroupBytes);
  const qkv = (g.nHeads + 2 * g.nKvHeads) * g.headDim;
  return `${STEP_STRUCT}
const NH: u32 = ${g.nHeads}u;
const HD: u32 = ${g.headDim}u;
const GROUP: u32 = ${g.nHeads / g.nKvHeads}u;
const QKV: u32 = ${qkv}u;
const PER: u32 = ${per}u;
const LSE: u32 = ${lseOffset}u;
const KC: u32 = ${kc}u;
const SCALE: f32 = ${f(1 / Math.sqrt(g.headDim))};
@group(0) @binding(0) var<storage, read> qkv: array<f32>;
@group(0) @binding(1) var<storage, read> md: array<u32>;
@group(0) @binding(2) var<uniform> step: Step;
@group(0) @binding(3) var<storage, read> cache: array<f32>;
@group(0) @binding(4) var<storage, read> sharedK: array<f32>;
@group(0) @binding(5) var<storage, read> sharedV: array<f32>;
@group(0) @binding(6) var<storage, read> sys: array<f32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;
${kvRowHelpers(g)}
var<workgroup> qs: array<f32, ${g.headDim}>;
var<workgroup> sc: array<f32, ${kc}>;
var<workgroup> rows: array<u32, ${kc}>;
// K rows of a chunk, padded by one float so that threads scoring different keys hit
// different banks.
var<workgroup> kt: array<f32, ${kc * (g.headDim + 1)}>;
var<workgroup> bounds: vec2<u32>;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let t = wg.x;
  let h = wg.y;
  let kvOff = (h / GROUP) * HD;
  let pos = md[step.posOff + t];
  let info = step.infoOff + md[step.seqOff + t] * 4u;
  let tableStart = md[info];
  let prefixLen = md[info + 1u];
  let mode = md[info + 2u];
  for (var i = lid.x; i < HD; i += ${WG}u) { qs[i] = qkv[t * QKV + h * HD + i] * SCALE; }
  var m = ${NEG_BIG};
  var l = 0.0;
  var acc: array<f32, PER>;
  for (var k = 0u; k < PER; k++) { acc[k] = 0.0; }
  var first = 0u;
  if (mode == 1u) {
    // Fold in each split of the system part as one virtual key (logit = its lse).
    first = prefixLen;
    for (var z = 0u; z < step.splits; z++) {
      let base = ((z * step.rows + t) * NH + h) * (HD + 1u);
      let sl = sys[base + HD];
      if (sl > ${NEG_BIG} * 0.5) {
        let nm = max(m, sl);
        let c1 = exp(m - nm);
        let c2 = exp(sl - nm);
        l = l * c1 + c2;
        for (var k = 0u; k < PER; k++) {
          let d = lid.x + k * ${WG}u;
          if (d < HD) { acc[k] = acc[k] * c1 + c2 * sys[base + d]; }
        }
        m = nm;
      }
    }
  }
  if (lid.x == 0u) { bounds = vec2<u32>(first, pos + 1u); }
  let b = workgroupUniformLoad(&bounds);
  for (var p0 = b.x; p0 < b.y; p0 += KC) {
    let count = min(KC, b.y - p0);
    if (lid.x < count) { rows[lid.x] = kvRow(p0 + lid.x, tableStart, prefixLen); }
    workgroupBarrier();
    // Stage the chunk's keys: consecutive threads read consecutive floats of a row.
    for (var idx = lid.x; idx < count * HD; idx += ${WG}u) {
      let j = idx / HD;
      let d = idx % HD;
      let row = rows[j];
      var k: f32;
      if ((row & SHARED_ROW) != 0u) { k = sharedK[(row & ~SHARED_ROW) * KVD + kvOff + d]; }
      else { k = cache[row * KVD + kvOff + d]; }
      kt[j * (HD + 1u) + d] = k;
    }
    workgroupBarrier();
    var s = ${NEG_BIG};
    if (lid.x < count) {
      s = 0.0;
      for (var i = 0u; i < HD; i++) { s += qs[i] * kt[lid.x * (HD + 1u) + i]; }
    }
    if (lid.x < KC) { sc[lid.x] = s; }
    workgroupBarrier();
    var cm = m;
    for (var j = 0u; j < count; j++) { cm = max(cm, sc[j]); }
    let c = exp(m - cm);
    l *= c;
    for (var k = 0u; k < PER; k++) { acc[k] *= c; }
    for (var j = 0u; j < count; j++) {
      let pj = exp(sc[j] - cm);
      l += pj;
      let row = rows[j];
      for (var k = 0u; k < PER; k++) {
        let d = lid.x + k * ${WG}u;
        if (d < HD) {
          var v: f32;
          if ((row & SHARED_ROW) != 0u) { v = sharedV[(row & ~SHARED_ROW) * KVD + kvOff + d]; }
          else { v = cache[VOFF + row * KVD + kvOff + d]; }
          acc[k] += pj * v;
        }
      }
    }
    m = cm;
    workgroupBarrier();
  }
  for (var k = 0u; k < PER; k++) {
    let d = lid.x + k * ${WG}u;
    if (d < HD) { out[(t * NH + h) * HD + d] = acc[k] / l; }
  }
  if (lid.x == 0u) { out[LSE + t * NH + h] = m + log(l); }
}
`;
}

/**
 * The RelayAttention system part with `tq` query rows per tile (4 threads each); dispatch
 * `(ceil(rows * group / tq), nKvHeads, splits)` workgroups. `tk` keys per staged tile (see
 * {@link sharedTileKeys}).
 */
export function sharedAttentionShader(g: AttnGeometry, tk: number, tq: number): string {
  const group = g.nHeads / g.nKvHeads;
  const qkv = (g.nHeads + 2 * g.nKvHeads) * g.headDim;
  const per = g.headDim / 4;
  return `${STEP_STRUCT}
const NH: u32 = ${g.nHeads}u;
const HD: u32 = ${g.headDim}u;
const KVD: u32 = ${g.nKvHeads * g.headDim}u;
const GROUP: u32 = ${group}u;
const QKV: u32 = ${qkv}u;
const TQ: u32 = ${tq}u;
const TK: u32 = ${tk}u;
const WG: u32 = ${4 * tq}u;
const PER: u32 = ${per}u;
const SCALE: f32 = ${f(1 / Math.sqrt(g.headDim))};
@group(0) @binding(0) var<storage, read> qkv: array<f32>;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read> sharedK: array<f32>;
@group(0) @binding(3) var<storage, read> sharedV: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
var<workgroup> qs: array<f32, ${tq * g.headDim}>;
// K rows padded by one float: threads scoring different keys hit different banks.
var<workgroup> ks: array<f32, ${tk * (g.headDim + 1)}>;
var<workgroup> vs: array<f32, ${tk * g.headDim}>;
var<workgroup> sc: array<f32, ${tq * tk}>;

@compute @workgroup_size(${4 * tq})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let kvh = wg.y;
  let total = step.rows * GROUP;
  // This workgroup's range of keys: split wg.z of step.splits, whole tiles.
  let chunk = ((step.sharedLen + step.splits - 1u) / step.splits + TK - 1u) / TK * TK;
  let k_begin = min(wg.z * chunk, step.sharedLen);
  let len = min(k_begin + chunk, step.sharedLen);
  for (var idx = lid.x; idx < TQ * HD; idx += WG) {
    let rr = wg.x * TQ + idx / HD;
    var q = 0.0;
    if (rr < total) {
      let h = kvh * GROUP + rr % GROUP;
      q = qkv[(rr / GROUP) * QKV + h * HD + idx % HD] * SCALE;
    }
    qs[idx] = q;
  }
  let r = lid.x / 4u;
  let sub = lid.x % 4u;
  var m = ${NEG_BIG};
  var l = 0.0;
  var acc: array<f32, PER>;
  for (var i = 0u; i < PER; i++) { acc[i] = 0.0; }
  for (var k0 = k_begin; k0 < len; k0 += TK) {
    for (var idx = lid.x; idx < TK * HD; idx += WG) {
      let p = k0 + idx / HD;
      var kv = vec2<f32>(0.0, 0.0);
      if (p < len) {
        let at = p * KVD + kvh * HD + idx % HD;
        kv = vec2<f32>(sharedK[at], sharedV[at]);
      }
      ks[(idx / HD) * (HD + 1u) + idx % HD] = kv.x;
      vs[idx] = kv.y;
    }
    workgroupBarrier();
    for (var idx = lid.x; idx < TQ * TK; idx += WG) {
      let qr = idx / TK;
      let j = idx % TK;
      var s = ${NEG_BIG};
      if (k0 + j < len) {
        s = 0.0;
        for (var i = 0u; i < HD; i++) { s += qs[qr * HD + i] * ks[j * (HD + 1u) + i]; }
      }
      sc[idx] = s;
    }
    workgroupBarrier();
    let count = min(TK, len - k0);
    var cm = m;
    for (var j = 0u; j < count; j++) { cm = max(cm, sc[r * TK + j]); }
    let c = exp(m - cm);
    l *= c;
    for (var i = 0u; i < PER; i++) { acc[i] *= c; }
    for (var j = 0u; j < count; j++) {
      let pj = exp(sc[r * TK + j] - cm);
      l += pj;
      for (var i = 0u; i < PER; i++) { acc[i] += pj * vs[j * HD + sub + 4u * i]; }
    }
    m = cm;
    workgroupBarrier();
  }
  let rr = wg.x * TQ + r;
  if (rr < total) {
    let t = rr / GROUP;
    let h = kvh * GROUP + rr % GROUP;
    let base = ((wg.z * step.rows + t) * NH + h) * (HD + 1u);
    for (var i = 0u; i < PER; i++) {
      var o = 0.0;
      if (l > 0.0) { o = acc[i] / l; }
      out[base + sub + 4u * i] = o;
    }
    if (sub == 0u) {
      var lse = ${NEG_BIG};
      if (l > 0.0) { lse = m + log(l); }
      out[base + HD] = lse;
    }
  }
}
`;
}
