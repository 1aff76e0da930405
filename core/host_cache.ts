/**
 * A second tier for the prefix cache in host memory (CPU offload, as LMCache gives vLLM):
 * a hashed block evicted from the device pool is copied to a host slot instead of being
 * lost, and a later prefix lookup that misses on the device continues here; a hit is
 * copied back into a fresh device block before the step runs, which costs a transfer
 * instead of a recompute.
 *
 * This class keeps only the bookkeeping: which host slot holds which block (by the same
 * chained hash and tokens as {@link BlockPool}), least recently stored first out. The engine
 * queues the copies and the executor moves the bytes (`Executor.swap`).
 *
 * @module
 */

import { HashIndex } from "./block_pool.ts";
import { LruBlockQueue } from "./lru_queue.ts";

/** Host slots holding evicted prefix blocks. */
export class HostKvCache {
  /** Slots in this tier. */
  readonly capacity: number;
  /** Executor slot number of this tier's slot 0 (after the preemption swap space). */
  readonly firstSlot: number;
  readonly #blockSize: number;
  readonly #byHash: HashIndex;
  readonly #hash: Float64Array;
  readonly #parent: Float64Array;
  readonly #tokens: Int32Array;
  /** Stored slots, least recently stored first. */
  readonly #order: LruBlockQueue;
  /** Slots never used or released. */
  readonly #free: number[] = [];

  /** `capacity` slots numbered from `firstSlot` on, for blocks of `blockSize` tokens. */
  constructor(capacity: number, firstSlot: number, blockSize: number) {
    this.capacity = capacity;
    this.firstSlot = firstSlot;
    this.#blockSize = blockSize;
    this.#byHash = new HashIndex(capacity);
    this.#hash = new Float64Array(capacity);
    this.#parent = new Float64Array(capacity);
    this.#tokens = new Int32Array(capacity * blockSize);
    this.#order = new LruBlockQueue(capacity);
    for (let i = capacity - 1; i >= 0; i--) this.#free.push(i);
  }

  /** Slots holding a block. */
  get size(): number {
    return this.#order.size;
  }

  /** Whether an executor slot number belongs to this tier. */
  owns(slot: number): boolean {
    return slot >= this.firstSlot && slot < this.firstSlot + this.capacity;
  }

  /**
   * Keep the block `tokens[from, from + blockSize)` whose chained hash is `hash`; returns
   * the executor slot to copy it to, or -1 when every slot is taken by a pending copy back.
   * When full, the block stored longest ago gives up its slot. A hash already stored keeps
   * its slot (-1: nothing to copy).
   */
  store(hash: number, parent: number, tokens: ArrayLike<number>, from: number): number {
    if (this.#find(hash, parent, tokens, from) >= 0) return -1;
    let i = this.#free.pop();
    if (i === undefined) {
      i = this.#order.shift();
      if (i < 0) return -1;
      this.#byHash.delete(this.#hash[i], i);
    }
    const bs = this.#blockSize;
    this.#hash[i] = hash;
    this.#parent[i] = parent;
    for (let t = 0; t < bs; t++) this.#tokens[i * bs + t] = tokens[from + t];
    this.#byHash.add(hash, i);
    this.#order.push(i);
    return this.firstSlot + i;
  }

  /**
   * The executor slot holding exactly this block, or -1. A hit is taken out of the cache:
   * its slot stays reserved until {@link release} (after the copy back has run).
   */
  take(hash: number, parent: number, tokens: ArrayLike<number>, from: number): number {
    const i = this.#find(hash, parent, tokens, from);
    if (i < 0) return -1;
    this.#byHash.delete(hash, i);
    this.#order.remove(i);
    return this.firstSlot + i;
  }

  /** Whether the block is stored (a lookup that takes nothing). */
  has(hash: number, parent: number, tokens: ArrayLike<number>, from: number): boolean {
    return this.#find(hash, parent, tokens, from) >= 0;
  }

  /** A taken slot's copy back has run: the slot is free again. */
  release(slot: number): void {
    this.#free.push(slot - this.firstSlot);
  }

  /** Forget every stored block (the KV layout changed, e.g. after an executor swap). */
  clear(): void {
    for (let i = this.#order.shift(); i >= 0; i = this.#order.shift()) {
      this.#byHash.delete(this.#hash[i], i);
      this.#free.push(i);
    }
  }

  #find(hash: number, parent: number, tokens: ArrayLike<number>, from: number): number {
    const i = this.#byHash.get(hash);
    if (i < 0 || this.#parent[i] !== parent) return -1;
    const bs = this.#blockSize;
    for (let t = 0; t < bs; t++) if (this.#tokens[i * bs + t] !== tokens[from + t]) return -1;
    return i;
  }
}
