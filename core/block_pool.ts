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

/**
 * A sequence of full blocks the pool can hash on demand: the engine's requests. Block `k`'s
 * tokens are `blockArray(k)[blockOffset(k) ..][0, blockSize)`.
 */
export interface BlockChain {
  /** Hash of full block `k`. */
  hashOfBlock(k: number, blockSize: number): number;
  /** Hash of the block before block `k` (the chain's root hash for block 0). */
  parentHashOfBlock(k: number, blockSize: number): number;
  /** The array holding block `k`'s tokens. */
  blockArray(k: number, blockSize: number): ArrayLike<number>;
  /** Where block `k` starts in {@link blockArray}'s array. */
  blockOffset(k: number, blockSize: number): number;
  /** The pool's bookkeeping for the chain's current placement; only the pool sets it. */
  cacheGroup: object | undefined;
}

/**
 * Chains whose first blocks hash alike, so their later blocks can hash alike too: any prefix
 * hit on them starts with a lookup of `key`. While one chain is all the group has ever held
 * ("lazy"), its full blocks are kept unhashed, by position: a block can only duplicate the
 * same chain's block at the same position (its own earlier placement), and a prefix hit on
 * the group can only be the block at each position. A second chain joining registers them
 * (in position order) and makes the group eager.
 */
class CacheGroup {
  lazy = true;
  alive = true;
  /** Placements that may still commit blocks into it. */
  members = 0;
  /** Blocks waiting to be registered. */
  pending = 0;
  /** Blocks registered in the hash index. */
  registered = 0;
  /** The pending block at each position of the owner (stale once evicted: check the pool). */
  readonly at: number[] = [];
  constructor(readonly key: number, readonly owner: BlockChain, readonly id: number) {}
}

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
  /**
   * Called with each evicted block that was registered under a hash, before it is reused:
   * its hash, its parent's hash and its tokens (`tokens[from, from + blockSize)`). The host
   * KV cache keeps a copy from here.
   */
  onEvict?: (block: number, hash: number, parent: number, tokens: Int32Array, from: number) => void;
  readonly #ref: Int32Array;
  readonly #hash: Float64Array;
  readonly #parent: Float64Array;
  readonly #tokens: Int32Array;
  readonly #byHash: HashIndex;
  readonly #free: number[] = [];
  readonly #lazy: boolean;
  /**
   * The group id of each block registered or pending through {@link commitBlock}, -1 for the
   * rest (ids in a typed array: no write barrier).
   */
  readonly #groupOf: Int32Array;
  /** Live groups by id; ids are reused. */
  readonly #groupById: (CacheGroup | undefined)[] = [];
  readonly #freeGroupIds: number[] = [];
  /** Position in its chain of each pending block, -1 for the rest. */
  readonly #pendingPos: Int32Array;
  readonly #groups = new Map<number, CacheGroup>();

  /**
   * All blocks start free and uncached. With `lazyRegistration` (the default), blocks that
   * no lookup can reach yet are hashed only when one could ({@link commitBlock}); the
   * pool's behaviour is the same either way.
   */
  constructor(
    numBlocks: number,
    blockSize: number,
    policy: KvCachePolicy,
    options: { lazyRegistration?: boolean } = {},
  ) {
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
    this.#lazy = options.lazyRegistration ?? true;
    this.#groupOf = new Int32Array(numBlocks).fill(-1);
    this.#pendingPos = new Int32Array(numBlocks).fill(-1);
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

  /** Whether a block is registered under a prefix hash, or waits to be ({@link commitBlock}). */
  isCached(block: number): boolean {
    return this.#hash[block] !== NO_HASH || this.#pendingPos[block] >= 0;
  }

  /** Take a free block (uncached first, else the policy's eviction choice); -1 when none. */
  allocate(now: number): number {
    let block = this.#free.pop();
    if (block === undefined) {
      block = this.policy.evict(now);
      if (block < 0) return -1;
      if (this.#ref[block] !== 0 || !this.isCached(block)) {
        throw new Error(`kvcache policy evicted block ${block}, which is not a cached free block`);
      }
      const hash = this.#hash[block];
      if (this.onEvict && hash !== NO_HASH) {
        this.onEvict(block, hash, this.#parent[block], this.#tokens, block * this.blockSize);
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
    if (this.isCached(block) && this.policy.prefixCaching) {
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
    if (!this.policy.prefixCaching || this.isCached(block)) return;
    this.#store(block, hash, parent, tokens, from);
  }

  /** Index `block` under `hash`, keeping its parent and tokens; false for a duplicate. */
  #store(
    block: number,
    hash: number,
    parent: number,
    tokens: ArrayLike<number>,
    from: number,
  ): boolean {
    if (!this.#byHash.add(hash, block)) return false; // the canonical copy stays
    this.#hash[block] = hash;
    this.#parent[block] = parent;
    const base = block * this.blockSize;
    for (let i = 0; i < this.blockSize; i++) this.#tokens[base + i] = tokens[from + i];
    return true;
  }

  /**
   * Block `k` of `chain` is full and computed (`block` holds it): make it findable by
   * prefix lookups, now or, while its group is lazy, when a lookup could reach it.
   */
  commitBlock(chain: BlockChain, k: number, block: number): void {
    if (!this.policy.prefixCaching || this.isCached(block)) return;
    const g = chain.cacheGroup as CacheGroup | undefined;
    const group = g?.alive ? g : this.#join(chain);
    if (!group.lazy) {
      this.#registerIn(group, block, chain, k);
      return;
    }
    // Its earlier placement's block here is still cached: that copy stays the canonical one.
    if (this.#pendingAt(group, k) >= 0) return;
    this.#groupOf[block] = group.id;
    this.#pendingPos[block] = k;
    group.pending++;
    group.at[k] = block;
  }

  /** The group's pending block at position `k`, or -1. */
  #pendingAt(g: CacheGroup, k: number): number {
    const b = g.at[k];
    return b !== undefined && this.#groupOf[b] === g.id && this.#pendingPos[b] === k ? b : -1;
  }

  /**
   * Register what the group of first-block hash `key` keeps unhashed (before its owner's
   * blocks move, which would change their hashes). Lookups do this themselves.
   */
  flushGroup(key: number): void {
    const g = this.#groups.get(key);
    if (g?.lazy) this.#flush(g);
  }

  /** The chain's current placement holds no blocks any more (preempted, swapped or ended). */
  leave(chain: BlockChain): void {
    const g = chain.cacheGroup as CacheGroup | undefined;
    chain.cacheGroup = undefined;
    if (!g?.alive) return;
    g.members--;
    this.#dropIfEmpty(g);
  }

  /**
   * The cached block holding exactly this prefix block, or -1. Look a chain's blocks up
   * from its first on, as a prefix hit does: the first block's lookup registers what its
   * group keeps unhashed. ({@link prefixHits} does the whole walk.)
   */
  lookup(hash: number, parent: number, tokens: ArrayLike<number>, from: number): number {
    // Every hit starts with a first block's lookup: register what that group kept unhashed.
    if (this.#groups.size > 0) this.flushGroup(hash);
    return this.#find(hash, parent, tokens, from);
  }

  /**
   * How many leading full blocks of `chain` (at most `max`) the cache holds, as a prefix
   * hit would take them; their ids go to `out[0 ..]`.
   */
  prefixHits(chain: BlockChain, max: number, out: number[]): number {
    if (!this.policy.prefixCaching || max <= 0) return 0;
    const bs = this.blockSize;
    const g = this.#groups.size > 0 ? this.#groups.get(chain.hashOfBlock(0, bs)) : undefined;
    if (g?.lazy) return this.#lazyHits(g, chain, max, out);
    let n = 0;
    for (; n < max; n++) {
      const b = this.#find(
        chain.hashOfBlock(n, bs),
        chain.parentHashOfBlock(n, bs),
        chain.blockArray(n, bs),
        chain.blockOffset(n, bs),
      );
      if (b < 0) break;
      out[n] = b;
    }
    return n;
  }

  /** {@link prefixHits} in a lazy group: its owner's blocks by position, tokens compared. */
  #lazyHits(g: CacheGroup, chain: BlockChain, max: number, out: number[]): number {
    const bs = this.blockSize, owner = g.owner;
    if (chain !== owner && chain.parentHashOfBlock(0, bs) !== owner.parentHashOfBlock(0, bs)) {
      return 0;
    }
    let n = 0;
    for (; n < max; n++) {
      const b = this.#pendingAt(g, n);
      if (b < 0) break;
      if (chain !== owner) {
        const a = chain.blockArray(n, bs), i = chain.blockOffset(n, bs);
        const o = owner.blockArray(n, bs), j = owner.blockOffset(n, bs);
        let same = true;
        for (let t = 0; t < bs && same; t++) same = a[i + t] === o[j + t];
        if (!same) break;
      }
      out[n] = b;
    }
    return n;
  }

  #find(hash: number, parent: number, tokens: ArrayLike<number>, from: number): number {
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
    for (const g of this.#groups.values()) g.alive = false;
    this.#groups.clear();
    this.#groupById.length = 0;
    this.#freeGroupIds.length = 0;
    this.#groupOf.fill(-1);
    this.#pendingPos.fill(-1);
  }

  #join(chain: BlockChain): CacheGroup {
    const key = chain.hashOfBlock(0, this.blockSize);
    let g = this.#groups.get(key);
    if (g?.lazy && g.owner !== chain) this.#flush(g);
    if (!g) {
      const id = this.#freeGroupIds.pop() ?? this.#groupById.length;
      g = new CacheGroup(key, chain, id);
      g.lazy = this.#lazy;
      this.#groups.set(key, g);
      this.#groupById[id] = g;
    }
    g.members++;
    chain.cacheGroup = g;
    return g;
  }

  /** Register a lazy group's pending blocks, in position order; it is eager from now on. */
  #flush(g: CacheGroup): void {
    g.lazy = false;
    for (let k = 0; k < g.at.length; k++) {
      const b = this.#pendingAt(g, k);
      if (b < 0) continue; // never committed, a duplicate, or evicted since
      this.#pendingPos[b] = -1;
      this.#groupOf[b] = -1;
      g.pending--;
      this.#registerIn(g, b, g.owner, k);
    }
    g.at.length = 0;
  }

  #registerIn(g: CacheGroup, block: number, chain: BlockChain, k: number): void {
    const bs = this.blockSize;
    const hash = chain.hashOfBlock(k, bs), parent = chain.parentHashOfBlock(k, bs);
    if (!this.#store(block, hash, parent, chain.blockArray(k, bs), chain.blockOffset(k, bs))) {
      return;
    }
    this.#groupOf[block] = g.id;
    g.registered++;
  }

  #dropIfEmpty(g: CacheGroup): void {
    if (!g.alive || g.members > 0 || g.pending > 0 || g.registered > 0) return;
    g.alive = false;
    if (this.#groups.get(g.key) === g) this.#groups.delete(g.key);
    this.#groupById[g.id] = undefined;
    this.#freeGroupIds.push(g.id);
  }

  #unregister(block: number): void {
    const id = this.#groupOf[block];
    const g = id >= 0 ? this.#groupById[id] : undefined;
    if (this.#pendingPos[block] >= 0) {
      this.#pendingPos[block] = -1;
      g!.pending--;
    } else {
      const h = this.#hash[block];
      if (h === NO_HASH) return;
      this.#byHash.delete(h, block);
      this.#hash[block] = NO_HASH;
      if (g) g.registered--;
    }
    if (g) {
      this.#groupOf[block] = -1;
      this.#dropIfEmpty(g);
    }
  }
}
