/**
 * Model-size arithmetic shared by executors and cost models.
 *
 * @module
 */

import type { ModelConfig } from "./types.ts";

/** Number of weights (norms included; the LM head counted once when tied). */
export function parameterCount(config: ModelConfig): number {
  const { dim, hiddenDim, nLayers, nHeads, nKvHeads, headDim, vocabSize } = config;
  const attention = dim * nHeads * headDim * 2 + dim * nKvHeads * headDim * 2;
  const ffn = 3 * dim * hiddenDim;
  const norms = 2 * dim;
  const embedding = vocabSize * dim;
  const lmHead = config.tieEmbeddings ? 0 : vocabSize * dim;
  return embedding + nLayers * (attention + ffn + norms) + dim + lmHead;
}

/** Bytes of KV cache one token takes across all layers (K and V). */
export function kvBytesPerToken(config: ModelConfig, bytesPerElement: number): number {
  return 2 * config.nLayers * config.nKvHeads * config.headDim * bytesPerElement;
}
