/**
 * Top-k selection on the GPU, so that a sequence sampling with top-k reads back k
 * (id, logit) pairs instead of its vocabulary's logits, and the host draws the token from
 * them with `sampleTopK` (core/sampling.ts): the same token the reference draws.
 *
 * One workgroup per selected row. The ranking is the sampler's: by logit, NaN as minus
 * infinity, -0 as 0, ties to the lower id. Each logit's bits map to a u32 key with the
 * same order, and a radix select (four rounds of 8 bits, most significant first, counted
 * in a workgroup histogram) finds the k-th largest key `T` and how many of the keys equal
 * to `T` belong to the top k. A last scan writes every key above `T` (any order) and the
 * lowest ids equal to `T` (each invocation scans a contiguous id range, so an exclusive
 * prefix of their counts orders them by id). Integer work only: no float arithmetic can
 * differ from the host's ranking.
 *
 * @module
 */

import { STEP_STRUCT } from "./common.ts";

/** Largest k selected on the GPU; a larger top-k reads the logits row back instead. */
export const TOPK_MAX = 1024;

/**
 * The selection kernel for a vocabulary of `vocab` tokens. Bindings: the sampled rows'
 * logits (as raw bits), the step metadata, where `step.topkOff` holds one
 * `(sampled row, k)` pair per selected row, the output (per selected row, `TOPK_MAX`
 * slots of `(id, logit bits)`), and the step uniform.
 */
export function topKShader(vocab: number): string {
  return `${STEP_STRUCT}
const V: u32 = ${vocab}u;
const KMAX: u32 = ${TOPK_MAX}u;
const WG: u32 = 256u;
@group(0) @binding(0) var<storage, read> logits: array<u32>;
@group(0) @binding(1) var<storage, read> info: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;
@group(0) @binding(3) var<uniform> step: Step;
var<workgroup> hist: array<atomic<u32>, 256>;
var<workgroup> counts: array<u32, 256>;
var<workgroup> above: atomic<u32>;
var<workgroup> prefix: u32;
var<workgroup> mask: u32;
var<workgroup> remaining: u32;

// Order-preserving key of an f32's bits; NaN ranks as minus infinity, -0 as +0.
fn key(bits: u32) -> u32 {
  var b = bits;
  if ((b & 0x7fffffffu) > 0x7f800000u) { b = 0xff800000u; }
  if (b == 0x80000000u) { b = 0u; }
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

fn emit(r: u32, slot: u32, id: u32, bits: u32) {
  let at = (r * KMAX + slot) * 2u;
  out[at] = id;
  out[at + 1u] = bits;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let r = wg.x;
  let row = info[step.topkOff + 2u * r];
  let k = info[step.topkOff + 2u * r + 1u];
  let base = row * V;
  if (lid.x == 0u) {
    prefix = 0u;
    mask = 0u;
    remaining = k;
    atomicStore(&above, 0u);
  }
  for (var round = 0u; round < 4u; round++) {
    let shift = 24u - 8u * round;
    atomicStore(&hist[lid.x], 0u);
    workgroupBarrier();
    let p = prefix;
    let m = mask;
    for (var i = lid.x; i < V; i += WG) {
      let kk = key(logits[base + i]);
      if ((kk & m) == p) { atomicAdd(&hist[(kk >> shift) & 255u], 1u); }
    }
    workgroupBarrier();
    if (lid.x == 0u) {
      // The digit of the k-th largest key among those matching the prefix.
      var rem = remaining;
      var d = 255u;
      loop {
        let c = atomicLoad(&hist[d]);
        if (c >= rem || d == 0u) { break; }
        rem -= c;
        d -= 1u;
      }
      prefix = p | (d << shift);
      mask = m | (255u << shift);
      remaining = rem;
    }
    workgroupBarrier();
  }
  let t = prefix;
  let ties = remaining;
  let firstTie = k - ties;
  let chunk = (V + WG - 1u) / WG;
  let lo = min(lid.x * chunk, V);
  let hi = min(lo + chunk, V);
  var mine = 0u;
  for (var i = lo; i < hi; i++) {
    let bits = logits[base + i];
    let kk = key(bits);
    if (kk > t) {
      emit(r, atomicAdd(&above, 1u), i, bits);
    } else if (kk == t) {
      mine += 1u;
    }
  }
  counts[lid.x] = mine;
  workgroupBarrier();
  if (lid.x == 0u) {
    var sum = 0u;
    for (var j = 0u; j < WG; j++) {
      let c = counts[j];
      counts[j] = sum;
      sum += c;
    }
  }
  workgroupBarrier();
  var before = counts[lid.x];
  for (var i = lo; i < hi && before < ties; i++) {
    let bits = logits[base + i];
    if (key(bits) == t) {
      emit(r, firstTie + before, i, bits);
      before += 1u;
    }
  }
}
`;
}
