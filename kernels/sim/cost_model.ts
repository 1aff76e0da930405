/**
 * The GPU cost model: the time of one engine iteration from the batch's shape, a hardware
 * profile and a model profile.
 *
 * Per step (DESIGN.md, "sim"; calibrated in docs/SIMULATOR.md):
 * - linear layers: max(FLOPs / effective compute, weight bytes / effective bandwidth),
 *   with the token count rounded up to the GEMM tile (tile quantization) and a better
 *   bandwidth efficiency for tiny batches (GEMV kernels);
 * - attention for prefill chunks: quadratic in the chunk plus reading earlier chunks' KV;
 * - attention for decodes: reading each request's KV;
 * - the LM head for the sequences that sample;
 * - tensor-parallel all-reduces (two per layer);
 * - a fixed software overhead per step and a small one per sequence.
 *
 * @module
 */

import type { CostModel } from "../../core/slots.ts";
import type { HardwareProfile } from "./hardware.ts";
import { kvBytesPerToken, layerParams, type ModelProfile } from "./models.ts";

/** The shape of one step, as the cost model reads it. */
export interface StepShape {
  /** Prompt tokens computed this step (all prefill chunks together). */
  prefillTokens: number;
  /** Tokens of earlier context of those chunks, summed over chunks. */
  prefillContext: number;
  /** Decoding sequences (one token each). */
  decodes: number;
  /** KV tokens the decodes read, summed. */
  decodeContext: number;
  /**
   * Attention work of the prefill chunks in query-key pairs: the sum over chunks of
   * `c * (p + c / 2)` for a chunk of `c` tokens after `p` cached ones. Computed from the
   * totals as if there were a single chunk when absent.
   */
  prefillPairs?: number;
  /** Prefill chunks in the step (each a sequence); 1 when absent and there are prefill tokens. */
  prefillSeqs?: number;
}

/**
 * Add to `shape` one decoding sequence that verifies `drafts` draft tokens after `context`
 * tokens of KV (speculative decoding): a decode that reads its KV once, as a decode does,
 * with `drafts` more query tokens through the layers and the attention. So verifying costs
 * at least what decoding costs.
 */
export function addVerify(shape: StepShape, context: number, drafts: number): void {
  shape.decodes++;
  shape.decodeContext += context;
  shape.prefillTokens += drafts;
  shape.prefillPairs = (shape.prefillPairs ?? 0) + drafts * (context + (drafts + 1) / 2);
}

/** Efficiency constants of the cost model (fractions of peak). */
export interface CostConstants {
  /** Fraction of peak compute reached by large GEMMs. */
  computeEff: number;
  /** Fraction of peak compute reached by attention kernels. */
  attnEff: number;
  /** Fraction of bandwidth reached reading weights with GEMM kernels. */
  memEff: number;
  /** Fraction of bandwidth reached reading weights with GEMV kernels (tiny batches). */
  memEffSmall: number;
  /** Largest token count served by GEMV kernels. */
  smallBatch: number;
  /** Fraction of bandwidth reached reading paged KV in decode attention. */
  kvEff: number;
  /** GEMM tile along the token dimension: token counts are rounded up to it. */
  tile: number;
}

/** Constants fitted on the Sarathi-Serve Yi-34B TP2 A100-PCIe table (docs/SIMULATOR.md). */
export const DEFAULT_CONSTANTS: Readonly<CostConstants> = Object.freeze({
  computeEff: 0.71,
  attnEff: 0.47,
  memEff: 0.49,
  memEffSmall: 0.49,
  smallBatch: 4,
  kvEff: 0.63,
  tile: 64,
});

/** Options of {@link GpuCostModel}. */
export interface GpuCostModelOptions {
  /** The accelerator. */
  hardware: HardwareProfile;
  /** The model. */
  model: ModelProfile;
  /** Tensor-parallel degree (1 by default). */
  tp?: number;
  /** Overrides of the efficiency constants. */
  constants?: Partial<CostConstants>;
}

/** A roofline cost model of a transformer step on a GPU (see the module doc). */
export class GpuCostModel implements CostModel {
  /** The accelerator. */
  readonly hardware: HardwareProfile;
  /** The model. */
  readonly model: ModelProfile;
  /** Tensor-parallel degree. */
  readonly tp: number;
  /** Efficiency constants in use. */
  readonly constants: Readonly<CostConstants>;
  // Precomputed per-step terms (seconds or seconds per unit).
  readonly #linBytesTime: number;
  readonly #linBytesTimeSmall: number;
  readonly #linFlopTimePerToken: number;
  readonly #headBytesTime: number;
  readonly #headFlopTimePerSeq: number;
  readonly #attnTimePerPair: number;
  readonly #kvTimePerTokenPrefill: number;
  readonly #kvTimePerTokenDecode: number;
  readonly #arFixed: number;
  readonly #arPerToken: number;
  readonly #swapTimePerToken: number;

  /** Build from a hardware and a model profile. */
  constructor(options: GpuCostModelOptions) {
    const { hardware: hw, model: m } = options;
    const tp = options.tp ?? 1;
    const c = { ...DEFAULT_CONSTANTS, ...options.constants };
    this.hardware = hw;
    this.model = m;
    this.tp = tp;
    this.constants = c;
    const linParams = m.nLayers * layerParams(m) / tp;
    const linBytes = linParams * m.bytesPerParam;
    this.#linBytesTime = linBytes / (hw.bandwidth * c.memEff);
    this.#linBytesTimeSmall = linBytes / (hw.bandwidth * c.memEffSmall);
    this.#linFlopTimePerToken = 2 * linParams / (hw.flops * c.computeEff);
    const headParams = m.vocabSize * m.dim / tp;
    this.#headBytesTime = headParams * m.bytesPerParam / (hw.bandwidth * c.memEff);
    this.#headFlopTimePerSeq = 2 * headParams / (hw.flops * c.computeEff);
    // QK^T and PV: 2 matmuls of 2 FLOPs per multiply-add over all query heads.
    this.#attnTimePerPair = 4 * m.nHeads * m.headDim * m.nLayers / tp / (hw.flops * c.attnEff);
    const kvTok = kvBytesPerToken(m) / tp;
    this.#kvTimePerTokenPrefill = kvTok / (hw.bandwidth * c.memEff);
    this.#kvTimePerTokenDecode = kvTok / (hw.bandwidth * c.kvEff);
    // Each rank moves its shard of the KV over its own host link, in parallel.
    this.#swapTimePerToken = kvTok / hw.hostBandwidth;
    if (tp > 1) {
      // Ring all-reduce, two per layer, of the activations (bf16).
      this.#arFixed = 2 * m.nLayers * hw.linkLatency;
      this.#arPerToken = 2 * m.nLayers * (m.dim * 2 * 2 * (tp - 1) / tp) / hw.linkBandwidth;
    } else {
      this.#arFixed = 0;
      this.#arPerToken = 0;
    }
  }

  /** Seconds to copy the KV of `tokens` tokens between device and host memory (swapping). */
  swapTime(tokens: number): number {
    return tokens * this.#swapTimePerToken;
  }

  /** Seconds for one step of the given shape. */
  stepTime(shape: StepShape): number {
    const p = shape.prefillTokens;
    const d = shape.decodes;
    const n = p + d;
    if (n <= 0) return 0;
    const c = this.constants;
    const prefillSeqs = shape.prefillSeqs ?? (p > 0 ? 1 : 0);
    const seqs = prefillSeqs + d;
    const hw = this.hardware;
    // Linear layers (tile quantization on the token dimension).
    const tiles = Math.ceil(n / c.tile) * c.tile;
    const linMem = n <= c.smallBatch ? this.#linBytesTimeSmall : this.#linBytesTime;
    let t = Math.max(tiles * this.#linFlopTimePerToken, linMem);
    // LM head on the sampling sequences.
    t += Math.max(seqs * this.#headFlopTimePerSeq, this.#headBytesTime);
    // Prefill attention: quadratic part plus reading earlier chunks' KV.
    if (p > 0) {
      const pairs = shape.prefillPairs ?? p * (shape.prefillContext + p / 2);
      t += pairs * this.#attnTimePerPair + shape.prefillContext * this.#kvTimePerTokenPrefill;
    }
    // Decode attention: reading each request's KV.
    t += shape.decodeContext * this.#kvTimePerTokenDecode;
    if (d > c.smallBatch) t += hw.decodeBatchOverhead;
    t += this.#arFixed + n * this.#arPerToken;
    return t + hw.stepOverhead + hw.seqOverhead * seqs;
  }
}

/** A fitted linear model of step time (the `cpu` profile, or any measured executor). */
export interface LinearProfile {
  /** Profile name (`cpu`). */
  name: string;
  /** Model the profile was measured on. */
  model: string;
  /** Seconds per step. */
  base: number;
  /** Seconds per token computed (prefill or decode). */
  perToken: number;
  /** Seconds per sequence in the batch. */
  perSeq: number;
  /** Seconds per prefill query-key pair (see {@link StepShape.prefillPairs}). */
  perPair: number;
  /** Seconds per KV token read by decodes. */
  perDecodeContext: number;
}

/** Step time as a linear function of the shape's features (a fitted profile). */
export class LinearCostModel implements CostModel {
  /** The fitted coefficients. */
  readonly profile: Readonly<LinearProfile>;

  /** Wrap fitted coefficients. */
  constructor(profile: LinearProfile) {
    this.profile = profile;
  }

  /** Seconds for one step of the given shape. */
  stepTime(shape: StepShape): number {
    const n = shape.prefillTokens + shape.decodes;
    if (n <= 0) return 0;
    const f = profileFeatures(shape);
    const p = this.profile;
    return p.base + p.perToken * f[1] + p.perSeq * f[2] + p.perPair * f[3] +
      p.perDecodeContext * f[4];
  }
}

/** Features of a step for a linear profile: [1, tokens, seqs, prefill pairs, decode context]. */
export function profileFeatures(shape: StepShape): [number, number, number, number, number] {
  const p = shape.prefillTokens;
  const prefillSeqs = shape.prefillSeqs ?? (p > 0 ? 1 : 0);
  const pairs = p > 0 ? (shape.prefillPairs ?? p * (shape.prefillContext + p / 2)) : 0;
  return [1, p + shape.decodes, prefillSeqs + shape.decodes, pairs, shape.decodeContext];
}
