/**
 * Linear layers `y[t, n] (+)= sum_k x[t, k] W[n, k]` (weights `[out, in]` row-major).
 *
 * Two kernels: a matrix-vector one for decode-sized batches (each workgroup owns 8 weight
 * rows and reads them once for all tokens, tokens taken 8 at a time while the rows stay in
 * cache) and a tiled matrix-matrix one for prefill (64 x 64 output tiles, 16-wide K slabs
 * staged in workgroup memory, 4 x 4 outputs per thread).
 *
 * @module
 */

import { STEP_STRUCT, weightDecl, type WeightType } from "./common.ts";

/** Shape and flavour of one linear layer kernel. */
export interface LinearSpec {
  /** Input width (a multiple of 4). */
  k: number;
  /** Output width. */
  n: number;
  /** Weight storage. */
  weights: WeightType;
  /** Add into `y` (the residual stream) instead of overwriting it. */
  accumulate: boolean;
  /** Which count of the step uniform gives the number of input rows. */
  count: "rows" | "samples";
}

/** Weight rows per matrix-vector workgroup. */
export const MV_ROWS = 8;
/** Output tile edge of the tiled kernel. */
export const MM_TILE = 64;

function store(spec: LinearSpec, index: string, value: string): string {
  return spec.accumulate ? `y[${index}] += ${value};` : `y[${index}] = ${value};`;
}

/**
 * The matrix-vector kernel; dispatch `ceil(n / MV_ROWS)` workgroups. With `subgroups`
 * (a device whose subgroups are aligned runs of 1, 2, 4, 8, 16 or 32 invocations, see
 * `subgroupLayoutOk`), each row's 32 partial sums are added by `subgroupAdd` and only one
 * value per subgroup goes through workgroup memory; otherwise a tree in workgroup memory.
 * The workgroup is one-dimensional (Naga refuses subgroup builtins otherwise): invocation
 * `i` is lane `i % 32` of weight row `i / 32`.
 */
export function matvecShader(spec: LinearSpec, subgroups = false): string {
  const k4 = spec.k / 4;
  const reduce = subgroups
    ? `
    for (var j = 0u; j < TB; j++) {
      let v = subgroupAdd(acc[j]);
      if (sid == 0u) { red[(row * TB + j) * LANES + lane / sgs] = v; }
    }
    workgroupBarrier();
    let t = t0 + lane;
    if (lane < TB && n < N && t < count) {
      var total = 0.0;
      for (var k = 0u; k < LANES / sgs; k++) { total += red[(row * TB + lane) * LANES + k]; }
      ${store(spec, "t * N + n", "total")}
    }
    workgroupBarrier();`
    : `
    for (var j = 0u; j < TB; j++) { red[(row * TB + j) * LANES + lane] = acc[j]; }
    workgroupBarrier();
    for (var s = LANES / 2u; s > 0u; s >>= 1u) {
      if (lane < s) {
        for (var j = 0u; j < TB; j++) {
          let i = (row * TB + j) * LANES + lane;
          red[i] += red[i + s];
        }
      }
      workgroupBarrier();
    }
    let t = t0 + lane;
    if (lane < TB && n < N && t < count) {
      ${store(spec, "t * N + n", "red[(row * TB + lane) * LANES]")}
    }
    workgroupBarrier();`;
  const extra = subgroups
    ? ",\n  @builtin(subgroup_invocation_id) sid: u32,\n  @builtin(subgroup_size) sgs: u32,"
    : "";
  return `${STEP_STRUCT}
const K4: u32 = ${k4}u;
const N: u32 = ${spec.n}u;
const LANES: u32 = 32u;
const ROWS: u32 = ${MV_ROWS}u;
const TB: u32 = 8u;
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
${weightDecl(1, spec.weights)}
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> step: Step;
var<workgroup> red: array<f32, ${MV_ROWS * 8 * 32}>;

@compute @workgroup_size(${32 * MV_ROWS})
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(local_invocation_index) li: u32${extra}
) {
  let row = li / LANES;
  let lane = li % LANES;
  let n = wg.x * ROWS + row;
  let count = step.${spec.count};
  for (var t0 = 0u; t0 < count; t0 += TB) {
    var acc: array<f32, 8>;
    for (var j = 0u; j < TB; j++) { acc[j] = 0.0; }
    if (n < N) {
      for (var k = lane; k < K4; k += LANES) {
        let wv = w4(n * K4 + k);
        for (var j = 0u; j < TB; j++) {
          let t = t0 + j;
          if (t < count) { acc[j] += dot(x[t * K4 + k], wv); }
        }
      }
    }${reduce}
  }
}
`;
}

/**
 * A kernel that records, per invocation of a 256-wide workgroup, its subgroup invocation
 * id, the subgroup size and `subgroupAdd(1)`; `subgroupLayoutOk` checks the result.
 */
export function subgroupProbeShader(): string {
  return `
@group(0) @binding(0) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(${32 * MV_ROWS})
fn main(
  @builtin(local_invocation_index) li: u32,
  @builtin(subgroup_invocation_id) sid: u32,
  @builtin(subgroup_size) sgs: u32,
) {
  let total = subgroupAdd(1u);
  out[li * 3u] = sid;
  out[li * 3u + 1u] = sgs;
  out[li * 3u + 2u] = total;
}
`;
}

/**
 * Whether the probe's record (3 words per invocation) shows full subgroups that are
 * aligned runs of a power of two dividing 32, the layout the subgroup matvec needs.
 */
export function subgroupLayoutOk(record: Uint32Array): boolean {
  const n = record.length / 3;
  for (let i = 0; i < n; i++) {
    const sid = record[3 * i], size = record[3 * i + 1], total = record[3 * i + 2];
    if (!(size >= 1 && size <= 32 && 32 % size === 0)) return false;
    if (sid !== i % size || total !== size) return false;
  }
  return n > 0;
}

/** The tiled kernel; dispatch `(ceil(n / MM_TILE), ceil(rows / MM_TILE))` workgroups. */
export function matmulShader(spec: LinearSpec): string {
  return `${STEP_STRUCT}
const K: u32 = ${spec.k}u;
const N: u32 = ${spec.n}u;
@group(0) @binding(0) var<storage, read> x: array<f32>;
${weightDecl(1, spec.weights)}
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> step: Step;
var<workgroup> xs: array<f32, 1024>;
var<workgroup> ws: array<f32, 1024>;

@compute @workgroup_size(16, 16)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
) {
  let count = step.${spec.count};
  let m0 = wg.y * 64u;
  let n0 = wg.x * 64u;
  var acc: array<f32, 16>;
  for (var i = 0u; i < 16u; i++) { acc[i] = 0.0; }
  for (var k0 = 0u; k0 < K; k0 += 16u) {
    for (var i = 0u; i < 4u; i++) {
      let idx = tid + i * 256u;
      let r = idx / 16u;
      let k = k0 + idx % 16u;
      var xv = 0.0;
      if (m0 + r < count && k < K) { xv = x[(m0 + r) * K + k]; }
      xs[idx] = xv;
      var wv = 0.0;
      if (n0 + r < N && k < K) { wv = w1((n0 + r) * K + k); }
      ws[idx] = wv;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < 16u; kk++) {
      var a: array<f32, 4>;
      var b: array<f32, 4>;
      for (var i = 0u; i < 4u; i++) {
        a[i] = xs[(lid.y + 16u * i) * 16u + kk];
        b[i] = ws[(lid.x + 16u * i) * 16u + kk];
      }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) { acc[i * 4u + j] += a[i] * b[j]; }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    for (var j = 0u; j < 4u; j++) {
      let m = m0 + lid.y + 16u * i;
      let n = n0 + lid.x + 16u * j;
      if (m < count && n < N) {
        ${store(spec, "m * N + n", "acc[i * 4u + j]")}
      }
    }
  }
}
`;
}
