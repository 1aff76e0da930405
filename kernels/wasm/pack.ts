/**
 * Writes model weights into the executor's memory in the layout the kernels read: rows
 * padded to a multiple of 8, q/k/v fused into one matrix, gate and up projections
 * interleaved by blocks of 4 rows, and optionally bf16 with each group of 8 values stored
 * as `j0 j4 j1 j5 j2 j6 j3 j7` (see `assembly/kernels.ts`).
 *
 * @module
 */

import type { ModelConfig, ModelWeights } from "../../core/model/types.ts";
import type { MemoryPlan } from "./layout.ts";

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** Round an f32 to bf16 (nearest, ties to even; NaN stays NaN). Returns the 16 bits. */
export function toBf16(value: number): number {
  f32Scratch[0] = value;
  const u = u32Scratch[0];
  if ((u & 0x7fffffff) > 0x7f800000) return (u >>> 16) | 0x40; // quiet NaN
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** The f32 value of bf16 bits. */
export function fromBf16(bits: number): number {
  u32Scratch[0] = (bits & 0xffff) << 16;
  return f32Scratch[0];
}

/** Where within a group of 8 the value of column `j % 8` is stored in bf16 form. */
const BF16_SLOT = [0, 2, 4, 6, 1, 3, 5, 7];

/** Writes matrices row by row into one memory. */
class MatrixWriter {
  readonly #buf: ArrayBuffer | SharedArrayBuffer;
  readonly #bf16: boolean;
  constructor(buf: ArrayBuffer | SharedArrayBuffer, bf16: boolean) {
    this.#buf = buf;
    this.#bf16 = bf16;
  }

  /**
   * Write `rows` rows of `src` (`inDim` wide) at `addr` with row stride `stride`
   * elements, as destination rows `rowMap(r)`; padding stays zero.
   */
  write(
    addr: number,
    src: Float32Array,
    rows: number,
    inDim: number,
    stride: number,
    rowMap: (r: number) => number = (r) => r,
  ): void {
    if (this.#bf16) {
      const out = new Uint16Array(this.#buf, addr);
      for (let r = 0; r < rows; r++) {
        const dst = rowMap(r) * stride;
        const s = r * inDim;
        for (let j = 0; j < inDim; j++) {
          out[dst + (j & ~7) + BF16_SLOT[j & 7]] = toBf16(src[s + j]);
        }
      }
    } else {
      const out = new Float32Array(this.#buf, addr);
      for (let r = 0; r < rows; r++) {
        out.set(src.subarray(r * inDim, (r + 1) * inDim), rowMap(r) * stride);
      }
    }
  }
}

/** Copy `weights` into `buf` at the places `plan` gives. */
export function packWeights(
  buf: ArrayBuffer | SharedArrayBuffer,
  plan: MemoryPlan,
  config: ModelConfig,
  weights: ModelWeights,
): void {
  const d = plan.dims;
  const w = new MatrixWriter(buf, plan.weightBytes === 2);
  const f32 = (addr: number, src: Float32Array) => new Float32Array(buf, addr, src.length).set(src);
  w.write(plan.embedding, weights.tokenEmbedding, config.vocabSize, config.dim, d.dimP);
  if (plan.lmHead !== plan.embedding) {
    w.write(plan.lmHead, weights.lmHead, config.vocabSize, config.dim, d.dimP);
  }
  f32(plan.finalNorm, weights.finalNorm);
  const hidden = config.hiddenDim;
  // Row r of w1 (or w3) goes to block floor(r / 4) of 8 rows: w1's four rows, then w3's.
  const gateRow = (r: number) => (r >> 2) * 8 + (r & 3);
  const upRow = (r: number) => (r >> 2) * 8 + 4 + (r & 3);
  weights.layers.forEach((lw, l) => {
    const a = plan.layers[l];
    f32(a.attnNorm, lw.attnNorm);
    f32(a.ffnNorm, lw.ffnNorm);
    w.write(a.wqkv, lw.wq, d.qDim, config.dim, d.dimP);
    w.write(a.wqkv, lw.wk, d.kvDim, config.dim, d.dimP, (r) => d.qDim + r);
    w.write(a.wqkv, lw.wv, d.kvDim, config.dim, d.dimP, (r) => d.qDim + d.kvDim + r);
    w.write(a.wo, lw.wo, config.dim, d.qDim, d.attP);
    w.write(a.w13, lw.w1, hidden, config.dim, d.dimP, gateRow);
    w.write(a.w13, lw.w3, hidden, config.dim, d.dimP, upRow);
    w.write(a.w2, lw.w2, config.dim, hidden, d.hidP);
  });
}

/** Fill the RoPE tables: angle `pos * theta^(-2i / headDim)` for `i < headDim / 2`. */
export function writeRope(
  buf: ArrayBuffer | SharedArrayBuffer,
  plan: MemoryPlan,
  config: ModelConfig,
): void {
  const half = config.headDim / 2;
  const cos = new Float32Array(buf, plan.cos, plan.ropeLen * half);
  const sin = new Float32Array(buf, plan.sin, plan.ropeLen * half);
  for (let i = 0; i < half; i++) {
    const freq = Math.pow(config.ropeTheta, (-2 * i) / config.headDim);
    for (let p = 0; p < plan.ropeLen; p++) {
      cos[p * half + i] = Math.cos(p * freq);
      sin[p * half + i] = Math.sin(p * freq);
    }
  }
}
