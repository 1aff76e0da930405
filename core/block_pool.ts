/**
 * The KV block pool: fixed-size blocks with reference counts, and hash-chained full
 * blocks for prefix reuse. The pool owns the state; which cached free block to evict is
 * the kvcache plugin's decision ({@link KvCachePolicy}).
 *
 * A block is in exactly one of three places: held (reference count > 0), free and
 * uncached (on a stack), or free and cached (tracked by the policy, findable by hash).
 *
 * @module
 */

import type { KvCachePolicy } from "./slots.ts";
import type { RequestView } from "./types.ts";

const NO_HASH = -1;

/**
 * Hash of a full block: mixes the parent block's hash with the block's tokens, so equal
 * hashes mean equal prefixes (up to collisions, which {@link BlockPool.lookup} rules out by
 * comparing tokens). Two 32-bit lanes give a 52-bit non-negative integer.
 */
export function blockHash(
  parent: number,
  tokens: ArrayLike<number>,
  from: number,
  to: number,
): number {
  let a = (parent % 4294967296) ^ 0x9e3779b9;
  let b = Math.floor(parent / 4294967296) ^ 0x85ebca6b;
  for (let i = from; i < to; i++) {
    const t = tokens[i] | 0;
    a = Math.imul(a ^ t, 0xcc9e2d51);
    a = (a << 15) | (a >>> 17);
    b = Math.imul(b ^ a, 0x1b873593) + 0x6b43a9b5;
    b = (b << 13) | (b >>> 19);
  }
  a = Math.imul(a ^ (a >>> 16), 0x85ebca6b);
  b = Math.imul(b ^ (b >>> 13), 0xc2b2ae35);
  a ^= b >>> 7;
  return ((a >>> 0) & 0xfffff) * 4294967296 + (b >>> 0);
}

/**
 * Map from block hash to block id in typed arrays (open addressing, linear probing,
 * backward-shift deletion): no allocation and no boxed keys on the hot path. It never
 * holds more entries than the pool has blocks, so a table of twice that never fills.
 */
export class HashIndex {
  readonly #keys: Float64Array;
  readonly #values: Int32Array;
  readonly #mask: number;

  /** Room for `capacity` entries. */
  constructor(capacity: number) {
    let size = 16;
    while (size < 2 * capacity) size *= 2;
    this.#keys = new Float64Array(size);
    this.#values = new Int32Array(size).fill(-1);
    this.#mask = size - 1;
  }

  #slot(hash: number): number {
    return (hash ^ (hash / 4294967296)) & this.#mask;
  }

  /** The block under `hash`, or -1. */
  get(hash: number): number {
    for (let i = this.#slot(hash);; i = (i + 1) & this.#mask) {
      const v = this.#values[i];
      if (v < 0) return -1;
      if (this.#keys[i] === hash) return v;
    }
  }

  /** Insert; false when the hash is already present. */
  add(hash: number, block: number): boolean {
    for (let i = this.#slot(hash);; i = (i + 1) & this.#mask) {
      if (this.#values[i] < 0) {
        this.#keys[i] = hash;
        this.#values[i] = block;
        return true;
      }
      if (this.#keys[i] === hash) return false;
    }
  }

  /** Remove `hash` if it maps to `block`. */
  delete(hash: number, block: number): void {
    const mask = this.#mask, keys = this.#keys, values = this.#values;
    let i = this.#slot(hash);
    for (;; i = (i + 1) & mask) {
      if (values[i] < 0) return;
      if (keys[i] === hash) break;
    }
    if (values[i] !== block) return;
    // Shift later entries of the probe run back into the hole.
    for (let j = (i + 1) & mask; values[j] >= 0; j = (j + 1) & mask) {
      const home = this.#slot(keys[j]);
      if (((j - home) & mask) >= ((j - i) & mask)) {
        keys[i] = keys[j];
        values[i] = values[j];
        i = j;
      }
    }
    values[i] = -1;
  }

  /** Remove every entry. */
  clear(): void {
    this.#values.fill(-1);
  }
}

/** Hash seed of the first block of every sequence. */
export const ROOT_HASH = 0;

/** Fixed-size KV blocks: allocation, reference counts, prefix lookup, eviction. */
export class BlockPool {
  /** Blocks in the pool. */
  readonly numBlocks: number;
  /** Tokens per block. */
  readonly blockSize: number;
  /** The eviction policy for cached free blocks; replaced on a kvcache swap. */
  policy: KvCachePolicy;
  /** Cached blocks evicted so far. */
  evictions = 0;
  readonly #ref: Int32Array;
  readonly #hash: Float64Array;
  readonly #parent: Float64Array;
  readonly #tokens: Int32Array;
  readonly #byHash: HashIndex;
  readonly #free: number[] = [];

  /** All blocks start free and uncached. */
  constructor(numBlocks: number, blockSize: number, policy: KvCachePolicy) {
    if (!Number.isInteger(numBlocks) || numBlocks < 1) {
      throw new RangeError(`the pool needs at least one block, got ${numBlocks}`);
    }
    this.numBlocks = numBlocks;
    this.blockSize = blockSize;
    this.policy = policy;
    this.#ref = new Int32Array(numBlocks);
    this.#hash = new Float64Array(numBlocks).fill(NO_HASH);
    this.#parent = new Float64Array(numBlocks);
    this.#tokens = new Int32Array(numBlocks * blockSize);
    this.#byHash = new HashIndex(numBlocks);
    for (let b = numBlocks - 1; b >= 0; b--) this.#free.push(b);
  }

  /** Blocks that can be allocated now: uncached free ones plus cached evictable ones. */
  get freeBlocks(): number {
    return this.#free.length + this.policy.size;
  }

  /** Blocks held by at least one request. */
  get usedBlocks(): number {
    return this.numBlocks - this.freeBlocks;
  }

  /** Reference count of a block. */
  refCount(block: number): number {
    return this.#ref[block];
  }

  /** Whether a block is registered under a prefix hash. */
  isCached(block: number): boolean {
    return this.#hash[block] !== NO_HASH;
  }

  /** Take a free block (uncached first, else the policy's eviction choice); -1 when none. */
  allocate(now: number): number {
    let block = this.#free.pop();
    if (block === undefined) {
      block = this.policy.evict(now);
      if (block < 0) return -1;
      if (this.#ref[block] !== 0 || this.#hash[block] === NO_HASH) {
        throw new Error(`kvcache policy evicted block ${block}, which is not a cached free block`);
      }
      this.#unregister(block);
      this.evictions++;
    }
    this.#ref[block] = 1;
    return block;
  }

  /** Add a reference to a cached block found by {@link lookup} (a prefix hit). */
  acquire(block: number): void {
    if (this.#ref[block] === 0) this.policy.onReuse(block);
    this.#ref[block]++;
  }

  /** Drop a reference; at zero the block is kept for reuse (if hashed) or freed. */
  release(block: number, now: number, owner?: RequestView): void {
    const r = this.#ref[block];
    if (r <= 0) throw new Error(`block ${block} released while free`);
    this.#ref[block] = r - 1;
    if (r > 1) return;
    if (this.#hash[block] !== NO_HASH && this.policy.prefixCaching) {
      this.policy.onCachedFree(block, now, owner);
    } else {
      this.#unregister(block);
      this.#free.push(block);
    }
  }

  /**
   * Record that a held block is full with `tokens[from, from + blockSize)` after a prefix
   * whose last block hashed to `parent`. A block already known under that hash stays the
   * canonical copy; this one is then simply not findable.
   */
  register(
    block: number,
    hash: number,
    parent: number,
    tokens: ArrayLike<number>,
    from: number,
  ): void {
    if (!this.policy.prefixCaching || this.#hash[block] !== NO_HASH) return;
    if (!this.#byHash.add(hash, block)) return;
    this.#hash[block] = hash;
    this.#parent[block] = parent;
    const base = block * this.blockSize;
    for (let i = 0; i < this.blockSize; i++) this.#tokens[base + i] = tokens[from + i];
  }

  /** The cached block holding exactly this prefix block, or -1. */
  lookup(hash: number, parent: number, tokens: ArrayLike<number>, from: number): number {
    const block = this.#byHash.get(hash);
    if (block < 0 || this.#parent[block] !== parent) return -1;
    const base = block * this.blockSize;
    for (let i = 0; i < this.blockSize; i++) {
      if (this.#tokens[base + i] !== tokens[from + i]) return -1;
    }
    return block;
  }

  /**
   * Install a new eviction policy, handing it the cached free blocks in the old policy's
   * eviction order (a kvcache hot swap). Without prefix caching they become plain free.
   */
  replacePolicy(next: KvCachePolicy, now: number): void {
    const old = this.policy;
    this.policy = next;
    for (let b = old.evict(now); b >= 0; b = old.evict(now)) {
      if (next.prefixCaching) next.onCachedFree(b, now, undefined);
      else {
        this.#unregister(b);
        this.#free.push(b);
      }
    }
  }

  /** Forget every cached block (the KV contents are gone, e.g. after an executor swap). */
  dropCache(now: number): void {
    for (let b = this.policy.evict(now); b >= 0; b = this.policy.evict(now)) {
      this.#unregister(b);
      this.#free.push(b);
    }
    this.#hash.fill(NO_HASH);
    this.#byHash.clear();
  }

  #unregister(block: number): void {
    const h = this.#hash[block];
    if (h === NO_HASH) return;
    this.#byHash.delete(h, block);
    this.#hash[block] = NO_HASH;
  }
}
