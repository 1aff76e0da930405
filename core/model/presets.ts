/**
 * Named model configurations served with dummy weights and the byte tokenizer, so that
 * the engine, the server and the benchmarks run with no download.
 *
 * The `llama2c-*` shapes are those of Karpathy's llama2.c "stories" checkpoints (classifier
 * tied to the embedding, as there); ids above the byte tokenizer's range decode to nothing.
 *
 * @module
 */

import type { ModelConfig } from "./types.ts";
import { BOS_ID, BYTE_VOCAB_SIZE, EOS_ID } from "./byte_tokenizer.ts";

/** Fields every preset shares. */
const COMMON = { ropeTheta: 10000, normEps: 1e-5, bosTokenId: BOS_ID } as const;

function preset(
  shape: Omit<ModelConfig, "ropeTheta" | "normEps" | "bosTokenId" | "eosTokenIds" | "headDim">,
): ModelConfig {
  return { ...COMMON, eosTokenIds: [EOS_ID], headDim: shape.dim / shape.nHeads, ...shape };
}

/** The presets by name. */
export const PRESETS: Readonly<Record<string, Readonly<ModelConfig>>> = {
  /** For tests: about 134k parameters. */
  "tiny": preset({
    dim: 64,
    hiddenDim: 176,
    nLayers: 2,
    nHeads: 4,
    nKvHeads: 4,
    vocabSize: BYTE_VOCAB_SIZE,
    maxSeqLen: 512,
    tieEmbeddings: false,
  }),
  /** Like `tiny` with grouped-query attention: 8 query heads share 2 KV heads. */
  "tiny-gqa": preset({
    dim: 64,
    hiddenDim: 176,
    nLayers: 2,
    nHeads: 8,
    nKvHeads: 2,
    vocabSize: BYTE_VOCAB_SIZE,
    maxSeqLen: 512,
    tieEmbeddings: false,
  }),
  /** The embedded server default: the stories15M shape over the byte vocabulary. */
  "small": preset({
    dim: 288,
    hiddenDim: 768,
    nLayers: 6,
    nHeads: 6,
    nKvHeads: 6,
    vocabSize: BYTE_VOCAB_SIZE,
    maxSeqLen: 2048,
    tieEmbeddings: true,
  }),
  /** llama2.c stories15M: about 15.2M parameters. */
  "llama2c-15m": preset({
    dim: 288,
    hiddenDim: 768,
    nLayers: 6,
    nHeads: 6,
    nKvHeads: 6,
    vocabSize: 32000,
    maxSeqLen: 2048,
    tieEmbeddings: true,
  }),
  /** llama2.c stories110M: about 110M parameters. */
  "llama2c-110m": preset({
    dim: 768,
    hiddenDim: 2048,
    nLayers: 12,
    nHeads: 12,
    nKvHeads: 12,
    vocabSize: 32000,
    maxSeqLen: 2048,
    tieEmbeddings: true,
  }),
};

/** Names of the presets, for help texts and error messages. */
export const PRESET_NAMES: readonly string[] = Object.keys(PRESETS);

/** The preset called `name` (a fresh copy), or undefined. */
export function presetConfig(name: string): ModelConfig | undefined {
  const c = Object.hasOwn(PRESETS, name) ? PRESETS[name] : undefined;
  return c ? { ...c, eosTokenIds: [...c.eosTokenIds] } : undefined;
}
