/**
 * A memory-bandwidth probe: each workgroup streams a slice of a large buffer with vec4
 * loads and writes one sum (so the loads cannot be dropped). What a kernel can read per
 * second on this device is the yardstick for the decode kernels.
 *
 * @module
 */

/** Threads per probe workgroup. */
export const PROBE_THREADS = 256;
/** vec4 loads per thread. */
export const PROBE_LOADS = 64;

/** The probe; dispatch `vec4Count / (PROBE_THREADS * PROBE_LOADS)` workgroups. */
export function bandwidthShader(): string {
  return `
@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> sums: array<f32>;
var<workgroup> red: array<f32, ${PROBE_THREADS}>;
@compute @workgroup_size(${PROBE_THREADS})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let group = wg.x + wg.y * nwg.x;
  let base = group * ${PROBE_THREADS * PROBE_LOADS}u + lid.x;
  var acc = vec4<f32>(0.0);
  for (var i = 0u; i < ${PROBE_LOADS}u; i++) { acc += src[base + i * ${PROBE_THREADS}u]; }
  red[lid.x] = acc.x + acc.y + acc.z + acc.w;
  workgroupBarrier();
  for (var s = ${PROBE_THREADS / 2}u; s > 0u; s >>= 1u) {
    if (lid.x < s) { red[lid.x] += red[lid.x + s]; }
    workgroupBarrier();
  }
  if (lid.x == 0u) { sums[group] = red[0]; }
}
`;
}
