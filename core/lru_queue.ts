/**
 * An O(1) least-recently-used queue of small integer ids (KV block ids, host slots): the
 * eviction order of cached blocks (`lru-prefix`, `relay`, `ttl`) and of the host KV cache.
 *
 * @module
 */

/** An O(1) least-recently-freed queue of block ids (intrusive doubly linked list). */
export class LruBlockQueue {
  readonly #prev: Int32Array;
  readonly #next: Int32Array;
  readonly #inQueue: Uint8Array;
  #head = -1;
  #tail = -1;
  #size = 0;

  /** Room for block ids `0 .. capacity - 1`. */
  constructor(capacity: number) {
    this.#prev = new Int32Array(capacity).fill(-1);
    this.#next = new Int32Array(capacity).fill(-1);
    this.#inQueue = new Uint8Array(capacity);
  }

  /** Blocks queued. */
  get size(): number {
    return this.#size;
  }

  /** Whether a block is queued. */
  has(block: number): boolean {
    return this.#inQueue[block] === 1;
  }

  /** Append as the most recently freed. */
  push(block: number): void {
    if (this.#inQueue[block]) throw new Error(`block ${block} is already queued`);
    this.#inQueue[block] = 1;
    this.#prev[block] = this.#tail;
    this.#next[block] = -1;
    if (this.#tail >= 0) this.#next[this.#tail] = block;
    else this.#head = block;
    this.#tail = block;
    this.#size++;
  }

  /** Remove a queued block wherever it is. */
  remove(block: number): void {
    if (!this.#inQueue[block]) throw new Error(`block ${block} is not queued`);
    const p = this.#prev[block], n = this.#next[block];
    if (p >= 0) this.#next[p] = n;
    else this.#head = n;
    if (n >= 0) this.#prev[n] = p;
    else this.#tail = p;
    this.#inQueue[block] = 0;
    this.#size--;
  }

  /** Remove and return the least recently freed block, or -1. */
  shift(): number {
    const b = this.#head;
    if (b >= 0) this.remove(b);
    return b;
  }
}
