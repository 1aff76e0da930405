/**
 * The naive oracle: a full recompute of the whole sequence at every step, with no KV
 * cache at all (each call computes K and V of every position afresh, in plain contiguous
 * arrays). The engine's continuous-batching equivalence tests compare against it.
 *
 * @module
 */

import type { ModelConfig, ModelWeights } from "../../core/model/types.ts";
import { argmax } from "../../core/sampling.ts";
import { addInPlace, matmul, rmsnorm, rope, ropeFrequencies, softmax, swiglu } from "./ops.ts";

/** Logits after the last of `tokens` (positions `0 .. tokens.length - 1`). */
export function naiveLogits(
  weights: ModelWeights,
  config: ModelConfig,
  tokens: readonly number[],
): Float32Array {
  const { dim, hiddenDim, nHeads, nKvHeads, headDim, vocabSize } = config;
  const T = tokens.length;
  if (T === 0) throw new RangeError("naiveLogits needs at least one token");
  const qDim = nHeads * headDim;
  const kvDim = nKvHeads * headDim;
  const freqs = ropeFrequencies(headDim, config.ropeTheta);

  const x = new Float32Array(T * dim);
  for (let t = 0; t < T; t++) {
    x.set(weights.tokenEmbedding.subarray(tokens[t] * dim, (tokens[t] + 1) * dim), t * dim);
  }
  const xb = new Float32Array(T * dim);
  const q = new Float32Array(T * qDim);
  const k = new Float32Array(T * kvDim);
  const v = new Float32Array(T * kvDim);
  const att = new Float32Array(T * qDim);
  const proj = new Float32Array(T * dim);
  const gate = new Float32Array(T * hiddenDim);
  const up = new Float32Array(T * hiddenDim);
  const scores = new Float64Array(T);

  for (const w of weights.layers) {
    rmsnorm(xb, x, w.attnNorm, T, dim, config.normEps);
    matmul(q, xb, w.wq, T, dim, qDim);
    matmul(k, xb, w.wk, T, dim, kvDim);
    matmul(v, xb, w.wv, T, dim, kvDim);
    for (let t = 0; t < T; t++) {
      rope(q, t * qDim, nHeads, headDim, t, freqs);
      rope(k, t * kvDim, nKvHeads, headDim, t, freqs);
    }
    for (let t = 0; t < T; t++) {
      for (let h = 0; h < nHeads; h++) {
        const kvh = Math.floor((h * nKvHeads) / nHeads);
        for (let s = 0; s <= t; s++) {
          let dot = 0;
          for (let i = 0; i < headDim; i++) {
            dot += q[t * qDim + h * headDim + i] * k[s * kvDim + kvh * headDim + i];
          }
          scores[s] = dot / Math.sqrt(headDim);
        }
        softmax(scores, t + 1);
        for (let i = 0; i < headDim; i++) {
          let sum = 0;
          for (let s = 0; s <= t; s++) sum += scores[s] * v[s * kvDim + kvh * headDim + i];
          att[t * qDim + h * headDim + i] = sum;
        }
      }
    }
    matmul(proj, att, w.wo, T, qDim, dim);
    addInPlace(x, proj, T * dim);
    rmsnorm(xb, x, w.ffnNorm, T, dim, config.normEps);
    matmul(gate, xb, w.w1, T, dim, hiddenDim);
    matmul(up, xb, w.w3, T, dim, hiddenDim);
    swiglu(gate, up, T * hiddenDim);
    matmul(proj, gate, w.w2, T, hiddenDim, dim);
    addInPlace(x, proj, T * dim);
  }

  const last = new Float32Array(dim);
  rmsnorm(last, x.subarray((T - 1) * dim), weights.finalNorm, 1, dim, config.normEps);
  const logits = new Float32Array(vocabSize);
  matmul(logits, last, weights.lmHead, 1, dim, vocabSize);
  return logits;
}

/**
 * Greedy generation of `n` tokens after `promptTokens`, recomputing everything for each
 * token (ties go to the lowest id, as in `sampleToken`). Returns the generated ids only.
 */
export function naiveGreedy(
  weights: ModelWeights,
  config: ModelConfig,
  promptTokens: readonly number[],
  n: number,
): number[] {
  const seq = [...promptTokens];
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const token = argmax(naiveLogits(weights, config, seq));
    out.push(token);
    seq.push(token);
  }
  return out;
}
