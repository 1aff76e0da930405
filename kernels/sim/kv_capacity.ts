/**
 * KV-cache capacity of a simulated deployment: what is left of the GPUs' memory after
 * the weights, at vLLM's default memory-utilisation fraction, divided into blocks.
 *
 * @module
 */

import { UsageError } from "../../core/errors.ts";
import type { HardwareProfile } from "./hardware.ts";
import { kvBytesPerToken, type ModelProfile, totalParams } from "./models.ts";

/** Inputs of {@link kvCapacityBlocks}. */
export interface KvCapacityOptions {
  /** The accelerator (all tensor-parallel ranks alike). */
  hardware: HardwareProfile;
  /** The model. */
  model: ModelProfile;
  /** Tensor-parallel degree (1 by default). */
  tp?: number;
  /** Tokens per KV block (16 by default). */
  blockSize?: number;
  /** Fraction of device memory the engine may use (0.9 by default, as vLLM). */
  memoryUtilization?: number;
  /** Bytes per GPU kept for activations and the runtime (1 GiB by default). */
  activationReserve?: number;
}

/** KV blocks that fit on the deployment; UsageError when the weights do not fit at all. */
export function kvCapacityBlocks(o: KvCapacityOptions): number {
  const tp = o.tp ?? 1;
  const blockSize = o.blockSize ?? 16;
  const util = o.memoryUtilization ?? 0.9;
  const reserve = o.activationReserve ?? 1024 ** 3;
  const weights = totalParams(o.model) * o.model.bytesPerParam / tp;
  const free = o.hardware.memory * util - weights - reserve;
  const perBlock = kvBytesPerToken(o.model) / tp * blockSize;
  const blocks = Math.floor(free / perBlock);
  if (blocks < 1) {
    throw new UsageError(
      `model ${o.model.name} (${(weights / 1e9).toFixed(1)} GB of weights per GPU) does not fit ` +
        `on ${o.hardware.name} with tensor parallelism ${tp}: raise --tp or pick a larger GPU`,
      "tp",
    );
  }
  return blocks;
}
