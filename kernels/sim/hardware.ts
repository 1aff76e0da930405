/**
 * Hardware profiles of simulated accelerators: peak dense bf16 compute, memory bandwidth,
 * memory size, a per-step software overhead and the interconnect used by tensor-parallel
 * all-reduces.
 *
 * Peak numbers are the vendors' dense (no sparsity) bf16 figures. The software terms
 * (`stepOverhead`, `seqOverhead`) describe the serving stack around the GPU (Python
 * scheduling, kernel launches, sampling) and are fitted on the Sarathi-Serve timing
 * tables (see docs/SIMULATOR.md, "Calibration").
 *
 * @module
 */

import { UsageError } from "../../core/errors.ts";

/** One accelerator as the cost model sees it. */
export interface HardwareProfile {
  /** Name used on the command line (`--gpu`). */
  readonly name: string;
  /** Peak dense bf16 compute, FLOP/s. */
  readonly flops: number;
  /** Memory bandwidth, bytes/s. */
  readonly bandwidth: number;
  /** Device memory, bytes. */
  readonly memory: number;
  /** Fixed software time per step, seconds (scheduling, launches, sampling setup). */
  readonly stepOverhead: number;
  /** Software time per sequence in the batch, seconds (metadata, sampling). */
  readonly seqOverhead: number;
  /**
   * Fixed cost of the batched decode-attention path, seconds, paid by steps with more
   * decodes than the cost model's `smallBatch` (the step between 4 and 8 decodes in the
   * Sarathi-Serve table).
   */
  readonly decodeBatchOverhead: number;
  /** Latency of one all-reduce between tensor-parallel ranks, seconds. */
  readonly linkLatency: number;
  /** Bus bandwidth of the tensor-parallel interconnect, bytes/s. */
  readonly linkBandwidth: number;
  /**
   * Effective host-device bandwidth for swapping KV blocks, bytes/s: what block-sized
   * copies reach over the PCIe link (about 80 % of its peak).
   */
  readonly hostBandwidth: number;
}

const GB = 1e9;
const GIB = 1024 ** 3;

// Software terms shared by the GPU profiles (fitted on the Yi-34B TP2 A100-PCIe table,
// Sarathi-Serve artifact; docs/SIMULATOR.md).
const STEP_OVERHEAD = 0.0072;
const SEQ_OVERHEAD = 0.00014;
const DECODE_BATCH_OVERHEAD = 0.017;

/** Built-in GPU profiles, by name. */
export const GPU_PROFILES: Readonly<Record<string, HardwareProfile>> = Object.freeze({
  "a100-80g": {
    name: "a100-80g",
    flops: 312e12,
    bandwidth: 2.0e12,
    memory: 80 * GIB,
    stepOverhead: STEP_OVERHEAD,
    seqOverhead: SEQ_OVERHEAD,
    decodeBatchOverhead: DECODE_BATCH_OVERHEAD,
    linkLatency: 25e-6, // NVLink 3
    linkBandwidth: 240 * GB,
    hostBandwidth: 25 * GB, // PCIe 4.0 x16
  },
  "a100-pcie-80g": {
    name: "a100-pcie-80g",
    flops: 312e12,
    bandwidth: 1.94e12,
    memory: 80 * GIB,
    stepOverhead: STEP_OVERHEAD,
    seqOverhead: SEQ_OVERHEAD,
    decodeBatchOverhead: DECODE_BATCH_OVERHEAD,
    linkLatency: 10e-6, // PCIe 4.0 x16 (fitted with the table)
    linkBandwidth: 50 * GB,
    hostBandwidth: 25 * GB, // PCIe 4.0 x16
  },
  "h100": {
    name: "h100",
    flops: 989e12,
    bandwidth: 3.35e12,
    memory: 80 * GIB,
    stepOverhead: STEP_OVERHEAD,
    seqOverhead: SEQ_OVERHEAD,
    decodeBatchOverhead: DECODE_BATCH_OVERHEAD,
    linkLatency: 20e-6, // NVLink 4
    linkBandwidth: 360 * GB,
    hostBandwidth: 50 * GB, // PCIe 5.0 x16
  },
  "h200": {
    name: "h200",
    flops: 989e12,
    bandwidth: 4.8e12,
    memory: 141 * GB,
    stepOverhead: STEP_OVERHEAD,
    seqOverhead: SEQ_OVERHEAD,
    decodeBatchOverhead: DECODE_BATCH_OVERHEAD,
    linkLatency: 20e-6,
    linkBandwidth: 360 * GB,
    hostBandwidth: 50 * GB, // PCIe 5.0 x16
  },
  "a40": {
    name: "a40",
    flops: 150e12,
    bandwidth: 0.696e12,
    memory: 48 * GIB,
    stepOverhead: STEP_OVERHEAD,
    seqOverhead: SEQ_OVERHEAD,
    decodeBatchOverhead: DECODE_BATCH_OVERHEAD,
    linkLatency: 10e-6, // PCIe 4.0
    linkBandwidth: 50 * GB,
    hostBandwidth: 25 * GB, // PCIe 4.0 x16
  },
});

/** Names of the built-in GPU profiles. */
export function gpuNames(): string[] {
  return Object.keys(GPU_PROFILES);
}

/** Look up a GPU profile by name; UsageError naming the allowed ones otherwise. */
export function gpuProfile(name: string): HardwareProfile {
  const p = GPU_PROFILES[name];
  if (!p) {
    throw new UsageError(
      `unknown GPU "${name}": allowed are ${
        gpuNames().join(", ")
      } (or "cpu" with a fitted profile)`,
      "gpu",
    );
  }
  return p;
}
