/**
 * Seeded dummy weights for any configuration, as vLLM's `--load-format dummy`: every
 * matrix is filled from a counter-based hash of `(seed, tensor, element)`, uniform with a
 * standard deviation of `1 / sqrt(fan_in)` (so activations keep their scale through the
 * layers), and every norm weight is 1. The same seed gives the same weights, bit for bit.
 *
 * The embedding is drawn smaller (`EMBEDDING_STD`): the first layer's outputs then
 * dominate the residual stream, so with a tied LM head the next-token logits do not
 * simply favour the current token (which would make greedy output repeat itself).
 *
 * @module
 */

import { mix32 } from "../sampling.ts";
import type { LayerWeights, ModelConfig, ModelWeights } from "./types.ts";

/** Standard deviation of the dummy token embedding. */
export const EMBEDDING_STD = 0.02;

/** Weyl increment of the per-element counter (odd, so every index maps to its own state). */
const GOLDEN = 0x9e3779b9;

/**
 * Fill `out` with uniform values of standard deviation `std`, from the stream `stream`
 * of seed `seed`. Element `i` is a pure function of `(seed, stream, i)`.
 */
export function fillDummy(out: Float32Array, seed: number, stream: number, std: number): void {
  const key = mix32((seed >>> 0) ^ mix32(stream + GOLDEN));
  // uniform on [-1, 1) has std 1/sqrt(3).
  const scale = (std * Math.sqrt(3)) / 8388608;
  for (let i = 0; i < out.length; i++) {
    // splitmix32-style: hash the i-th point of a Weyl sequence.
    let x = (key + Math.imul(i, GOLDEN)) >>> 0;
    x ^= x >>> 16;
    x = Math.imul(x, 0x7feb352d);
    x ^= x >>> 15;
    x = Math.imul(x, 0x846ca68b);
    x ^= x >>> 16;
    out[i] = ((x >>> 8) - 8388608) * scale;
  }
}

function matrix(rows: number, cols: number, seed: number, stream: number): Float32Array {
  const m = new Float32Array(rows * cols);
  fillDummy(m, seed, stream, 1 / Math.sqrt(cols));
  return m;
}

/** Dummy weights for `config`, deterministic in `seed`. */
export function dummyWeights(config: ModelConfig, seed = 0): ModelWeights {
  const { dim, hiddenDim, nHeads, nKvHeads, headDim, vocabSize } = config;
  const qDim = nHeads * headDim;
  const kvDim = nKvHeads * headDim;

  const tokenEmbedding = new Float32Array(vocabSize * dim);
  fillDummy(tokenEmbedding, seed, 0, EMBEDDING_STD);
  const lmHead = config.tieEmbeddings ? tokenEmbedding : matrix(vocabSize, dim, seed, 1);

  const layers: LayerWeights[] = [];
  for (let l = 0; l < config.nLayers; l++) {
    const s = 16 * (l + 1); // streams of layer l
    layers.push({
      attnNorm: new Float32Array(dim).fill(1),
      wq: matrix(qDim, dim, seed, s + 0),
      wk: matrix(kvDim, dim, seed, s + 1),
      wv: matrix(kvDim, dim, seed, s + 2),
      wo: matrix(dim, qDim, seed, s + 3),
      ffnNorm: new Float32Array(dim).fill(1),
      w1: matrix(hiddenDim, dim, seed, s + 4),
      w2: matrix(dim, hiddenDim, seed, s + 5),
      w3: matrix(hiddenDim, dim, seed, s + 6),
    });
  }
  return { tokenEmbedding, layers, finalNorm: new Float32Array(dim).fill(1), lmHead };
}
