/**
 * A paged KV store: per layer one K and one V array of
 * `numBlocks * blockSize * nKvHeads * headDim` floats. The token at position `p` of a
 * sequence lives in block `blockTable[floor(p / blockSize)]`, slot `p % blockSize`
 * (vLLM's PagedAttention layout, one pool per layer).
 *
 * @module
 */

import type { ModelConfig } from "../../core/model/types.ts";

/** K and V of every layer, addressed by block and slot. */
export class PagedKvStore {
  /** Tokens per block. */
  readonly blockSize: number;
  /** Blocks in the pool. */
  readonly numBlocks: number;
  /** Floats of one token's K (or V) in one layer: `nKvHeads * headDim`. */
  readonly kvDim: number;
  /** Keys, one array per layer. */
  readonly k: Float32Array[];
  /** Values, one array per layer. */
  readonly v: Float32Array[];

  /** Allocates the whole pool (zeros). */
  constructor(config: ModelConfig, numBlocks: number, blockSize: number) {
    if (!(Number.isInteger(numBlocks) && numBlocks > 0)) {
      throw new RangeError(`numBlocks must be a positive integer, got ${numBlocks}`);
    }
    if (!(Number.isInteger(blockSize) && blockSize > 0)) {
      throw new RangeError(`blockSize must be a positive integer, got ${blockSize}`);
    }
    this.blockSize = blockSize;
    this.numBlocks = numBlocks;
    this.kvDim = config.nKvHeads * config.headDim;
    const size = numBlocks * blockSize * this.kvDim;
    this.k = Array.from({ length: config.nLayers }, () => new Float32Array(size));
    this.v = Array.from({ length: config.nLayers }, () => new Float32Array(size));
  }

  /** Offset of position `pos`'s K (or V) vector in a layer array, through `blockTable`. */
  offset(blockTable: readonly number[], pos: number): number {
    const block = blockTable[Math.floor(pos / this.blockSize)];
    if (block === undefined || !(block >= 0 && block < this.numBlocks)) {
      throw new RangeError(
        `position ${pos} has no valid block in the block table (block ${block}, ` +
          `pool of ${this.numBlocks})`,
      );
    }
    return (block * this.blockSize + (pos % this.blockSize)) * this.kvDim;
  }
}
