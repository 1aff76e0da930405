/**
 * Model profiles for the cost model: the dimensions of a Llama-family transformer and
 * the parameter and KV-cache sizes that follow from them.
 *
 * @module
 */

import { UsageError } from "../../core/errors.ts";
import type { ModelConfig } from "../../core/model/types.ts";

/** Dimensions of a Llama-family model, as the cost model needs them. */
export interface ModelProfile {
  /** Name used on the command line (`--model`). */
  readonly name: string;
  /** Hidden size. */
  readonly dim: number;
  /** SwiGLU width. */
  readonly hiddenDim: number;
  /** Transformer layers. */
  readonly nLayers: number;
  /** Query heads. */
  readonly nHeads: number;
  /** KV heads (grouped-query attention). */
  readonly nKvHeads: number;
  /** Width of a head. */
  readonly headDim: number;
  /** Vocabulary size. */
  readonly vocabSize: number;
  /** Longest context. */
  readonly maxSeqLen: number;
  /** Bytes per weight and per KV element (2 for bf16). */
  readonly bytesPerParam: number;
  /** Whether the LM head is the embedding. */
  readonly tieEmbeddings: boolean;
}

type Dims = Omit<ModelProfile, "name" | "bytesPerParam" | "tieEmbeddings">;

function llama(name: string, d: Dims): ModelProfile {
  return { name, bytesPerParam: 2, tieEmbeddings: false, ...d };
}

const LLAMA_3_8B: Dims = {
  dim: 4096,
  hiddenDim: 14336,
  nLayers: 32,
  nHeads: 32,
  nKvHeads: 8,
  headDim: 128,
  vocabSize: 128256,
  maxSeqLen: 8192,
};

/** Built-in model profiles (published dimensions of each model). */
export const MODEL_PROFILES: Readonly<Record<string, ModelProfile>> = Object.freeze({
  "llama-2-7b": llama("llama-2-7b", {
    dim: 4096,
    hiddenDim: 11008,
    nLayers: 32,
    nHeads: 32,
    nKvHeads: 32,
    headDim: 128,
    vocabSize: 32000,
    maxSeqLen: 4096,
  }),
  "llama-2-13b": llama("llama-2-13b", {
    dim: 5120,
    hiddenDim: 13824,
    nLayers: 40,
    nHeads: 40,
    nKvHeads: 40,
    headDim: 128,
    vocabSize: 32000,
    maxSeqLen: 4096,
  }),
  "llama-2-70b": llama("llama-2-70b", {
    dim: 8192,
    hiddenDim: 28672,
    nLayers: 80,
    nHeads: 64,
    nKvHeads: 8,
    headDim: 128,
    vocabSize: 32000,
    maxSeqLen: 4096,
  }),
  "llama-3-8b": llama("llama-3-8b", LLAMA_3_8B),
  // Llama 3.1: the dimensions of Llama 3, a 128k context.
  "llama-3.1-8b": llama("llama-3.1-8b", { ...LLAMA_3_8B, maxSeqLen: 131072 }),
  "llama-3-70b": llama("llama-3-70b", {
    dim: 8192,
    hiddenDim: 28672,
    nLayers: 80,
    nHeads: 64,
    nKvHeads: 8,
    headDim: 128,
    vocabSize: 128256,
    maxSeqLen: 8192,
  }),
  "mistral-7b": llama("mistral-7b", {
    dim: 4096,
    hiddenDim: 14336,
    nLayers: 32,
    nHeads: 32,
    nKvHeads: 8,
    headDim: 128,
    vocabSize: 32000,
    maxSeqLen: 32768,
  }),
  "yi-34b": llama("yi-34b", {
    dim: 7168,
    hiddenDim: 20480,
    nLayers: 60,
    nHeads: 56,
    nKvHeads: 8,
    headDim: 128,
    vocabSize: 64000,
    maxSeqLen: 16384,
  }),
});

/** Names of the built-in model profiles. */
export function modelProfileNames(): string[] {
  return Object.keys(MODEL_PROFILES);
}

/** Look up a built-in model profile; undefined when there is none of that name. */
export function findModelProfile(name: string): ModelProfile | undefined {
  return MODEL_PROFILES[name];
}

/** Look up a built-in model profile; UsageError naming the allowed ones otherwise. */
export function modelProfile(name: string): ModelProfile {
  const p = MODEL_PROFILES[name];
  if (!p) {
    throw new UsageError(
      `unknown model "${name}": allowed are ${modelProfileNames().join(", ")}`,
      "model",
    );
  }
  return p;
}

/** A profile from a real model's configuration (any preset or loaded folder). */
export function profileFromConfig(name: string, c: ModelConfig, bytesPerParam = 2): ModelProfile {
  return {
    name,
    dim: c.dim,
    hiddenDim: c.hiddenDim,
    nLayers: c.nLayers,
    nHeads: c.nHeads,
    nKvHeads: c.nKvHeads,
    headDim: c.headDim,
    vocabSize: c.vocabSize,
    maxSeqLen: c.maxSeqLen,
    bytesPerParam,
    tieEmbeddings: c.tieEmbeddings,
  };
}

/** A model configuration from a profile (for building a weightless simulated model). */
export function configFromProfile(p: ModelProfile): ModelConfig {
  return {
    dim: p.dim,
    hiddenDim: p.hiddenDim,
    nLayers: p.nLayers,
    nHeads: p.nHeads,
    nKvHeads: p.nKvHeads,
    headDim: p.headDim,
    vocabSize: p.vocabSize,
    maxSeqLen: p.maxSeqLen,
    ropeTheta: 10000,
    normEps: 1e-5,
    tieEmbeddings: p.tieEmbeddings,
    bosTokenId: 1,
    eosTokenIds: [2],
  };
}

/** Weights of the linear layers of one transformer layer (attention and MLP). */
export function layerParams(p: ModelProfile): number {
  const q = p.nHeads * p.headDim;
  const kv = p.nKvHeads * p.headDim;
  return p.dim * q + 2 * p.dim * kv + q * p.dim + 3 * p.dim * p.hiddenDim;
}

/** All weights: layers, embedding and LM head (counted once when tied). */
export function totalParams(p: ModelProfile): number {
  const embed = p.vocabSize * p.dim;
  return p.nLayers * layerParams(p) + embed * (p.tieEmbeddings ? 1 : 2) + (2 * p.nLayers + 1) *
      p.dim;
}

/** Bytes of KV cache per token over all layers (keys and values). */
export function kvBytesPerToken(p: ModelProfile): number {
  return 2 * p.nLayers * p.nKvHeads * p.headDim * p.bytesPerParam;
}
