/**
 * The few operations a Llama forward pass is made of, on f32 arrays, written for
 * clarity (in the style of llama2.c). Shared by the paged forward and the naive oracle.
 *
 * @module
 */

/**
 * `out[t, i] = sum_j w[i, j] * x[t, j]` for `n` rows of `x`: `w` is `[outDim, inDim]`
 * row-major (Hugging Face `nn.Linear` layout), `x` is `[n, inDim]`, `out` is `[n, outDim]`.
 */
export function matmul(
  out: Float32Array,
  x: Float32Array,
  w: Float32Array,
  n: number,
  inDim: number,
  outDim: number,
): void {
  for (let i = 0; i < outDim; i++) {
    const row = i * inDim;
    for (let t = 0; t < n; t++) {
      const xt = t * inDim;
      let sum = 0;
      for (let j = 0; j < inDim; j++) sum += w[row + j] * x[xt + j];
      out[t * outDim + i] = sum;
    }
  }
}

/** RMSNorm of each of the `n` rows of `x` (width `dim`), scaled by `weight`, into `out`. */
export function rmsnorm(
  out: Float32Array,
  x: Float32Array,
  weight: Float32Array,
  n: number,
  dim: number,
  eps: number,
): void {
  for (let t = 0; t < n; t++) {
    const base = t * dim;
    let ss = 0;
    for (let j = 0; j < dim; j++) ss += x[base + j] * x[base + j];
    const inv = 1 / Math.sqrt(ss / dim + eps);
    for (let j = 0; j < dim; j++) out[base + j] = weight[j] * (x[base + j] * inv);
  }
}

/** RoPE inverse frequencies `theta^(-2i / headDim)` for `i < headDim / 2`. */
export function ropeFrequencies(headDim: number, theta: number): Float64Array {
  const half = headDim / 2;
  const freqs = new Float64Array(half);
  for (let i = 0; i < half; i++) freqs[i] = Math.pow(theta, (-2 * i) / headDim);
  return freqs;
}

/**
 * Rotate each of the `nHeads` heads stored at `v[offset ..]` for position `pos`, in the
 * Hugging Face "rotate half" convention: the pairs are `(i, i + headDim / 2)`.
 */
export function rope(
  v: Float32Array,
  offset: number,
  nHeads: number,
  headDim: number,
  pos: number,
  freqs: Float64Array,
): void {
  const half = headDim / 2;
  for (let h = 0; h < nHeads; h++) {
    const base = offset + h * headDim;
    for (let i = 0; i < half; i++) {
      const angle = pos * freqs[i];
      const cos = Math.cos(angle);
      const sin = Math.sin(angle);
      const a = v[base + i];
      const b = v[base + i + half];
      v[base + i] = a * cos - b * sin;
      v[base + i + half] = b * cos + a * sin;
    }
  }
}

/** In-place softmax of `x[0 .. n)`. */
export function softmax(x: Float32Array | Float64Array, n: number): void {
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (x[i] > max) max = x[i];
  let sum = 0;
  for (let i = 0; i < n; i++) {
    x[i] = Math.exp(x[i] - max);
    sum += x[i];
  }
  for (let i = 0; i < n; i++) x[i] /= sum;
}

/** SwiGLU in place: `gate[i] = silu(gate[i]) * up[i]`. */
export function swiglu(gate: Float32Array, up: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const g = gate[i];
    gate[i] = (g / (1 + Math.exp(-g))) * up[i];
  }
}

/** `x[i] += y[i]` for `i < n`. */
export function addInPlace(x: Float32Array, y: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) x[i] += y[i];
}
