/**
 * WGSL pieces shared by every kernel: the per-step uniform, the step metadata layout and
 * weight loads for f32 or packed-f16 storage.
 *
 * f16 weights are stored two per `u32` and widened with `unpack2x16float`, which is core
 * WGSL: the same shader runs with or without the `shader-f16` feature, and arithmetic
 * stays f32 (relay spec 1(f): accumulate in f32).
 *
 * @module
 */

/** Storage type of weight matrices on the device. */
export type WeightType = "f32" | "f16";

/**
 * The per-step uniform. `rows` query tokens, `samples` sampled rows, `seqs` sequences,
 * `sharedLen` the length of the relay prompt (0 when none); the `*Off` fields are offsets, in
 * u32 words, of each array in the metadata buffer; `splits` the number of key ranges the
 * relay system part is split into (each yields a partial output and log-sum-exp);
 * `topkRows` sampled rows select their top-k on the device, listed as `(sampled row, k)`
 * pairs at `topkOff`; in the first sub-step of decoding ahead, row `r` is fed the token
 * sampled for row `md[feedOff + r]` of the pass before.
 */
export const STEP_STRUCT = `
struct Step {
  rows: u32,
  samples: u32,
  seqs: u32,
  sharedLen: u32,
  posOff: u32,
  seqOff: u32,
  infoOff: u32,
  tableOff: u32,
  sampleOff: u32,
  splits: u32,
  topkOff: u32,
  topkRows: u32,
  feedOff: u32,
  pad1: u32,
  pad2: u32,
  pad3: u32,
}
`;

/** Words of {@link STEP_STRUCT}. */
export const STEP_WORDS = 16;

/**
 * Per-sequence info in the metadata buffer, 4 words each: first table entry, number of
 * leading positions that live in the shared relay buffer, mode (0: none, 1: relay, the
 * shared part is fused from the system kernel's output; 2: inline, the shared positions
 * are read by the per-request kernel itself), unused.
 */
export const INFO_WORDS = 4;

/** Declares `w` and the loads `w4(i)` (vec4 at vec4 index `i`) and `w1(i)`. */
export function weightDecl(binding: number, type: WeightType, name = "w"): string {
  if (type === "f32") {
    return `
@group(0) @binding(${binding}) var<storage, read> ${name}: array<vec4<f32>>;
fn ${name}4(i: u32) -> vec4<f32> { return ${name}[i]; }
fn ${name}1(i: u32) -> f32 { return ${name}[i >> 2u][i & 3u]; }
`;
  }
  return `
@group(0) @binding(${binding}) var<storage, read> ${name}: array<vec2<u32>>;
fn ${name}4(i: u32) -> vec4<f32> {
  let p = ${name}[i];
  return vec4<f32>(unpack2x16float(p.x), unpack2x16float(p.y));
}
fn ${name}1(i: u32) -> f32 {
  let p = ${name}[i >> 2u];
  let word = select(p.x, p.y, (i & 2u) != 0u);
  return unpack2x16float(word)[i & 1u];
}
`;
}

/** A float literal WGSL accepts (always with a decimal point or exponent). */
export function f(x: number): string {
  const s = String(x);
  return /[.eE]/.test(s) ? s : `${s}.0`;
}

/** Stands for minus infinity in kernels (WGSL has no infinity literal). */
export const NEG_BIG = "-1.0e30";
