/**
 * Host swap space for executors whose KV pools are CPU-addressable float arrays (the
 * `reference` arrays, the `wasm` executor's shared memory): each swapped-out block is
 * copied, from every pool, into one host array per slot, and back on swap-in. The engine
 * owns the slot numbers (core/engine.ts, "swap"); this only moves the floats.
 *
 * @module
 */

import type { SwapCopy } from "../core/slots.ts";

/** Copies KV blocks between pools laid out block after block and host slots. */
export class HostSwapSpace {
  readonly #pools: readonly Float32Array[];
  readonly #blockFloats: number;
  readonly #slots = new Map<number, Float32Array>();

  /**
   * `pools`: every K and V pool (one per layer each), where block `b` is the floats
   * `[b * blockFloats, (b + 1) * blockFloats)`.
   */
  constructor(pools: readonly Float32Array[], blockFloats: number) {
    this.#pools = pools;
    this.#blockFloats = blockFloats;
  }

  /** Host slots holding a block now. */
  get slotsInUse(): number {
    return this.#slots.size;
  }

  /** Copy each `out` block to its slot, then each `into` slot to its block (and free the slot). */
  swap(out: readonly SwapCopy[], into: readonly SwapCopy[]): void {
    const f = this.#blockFloats;
    for (const { block, slot } of out) {
      const saved = this.#slots.get(slot) ?? new Float32Array(this.#pools.length * f);
      this.#pools.forEach((pool, p) => saved.set(pool.subarray(block * f, (block + 1) * f), p * f));
      this.#slots.set(slot, saved);
    }
    for (const { block, slot } of into) {
      const saved = this.#slots.get(slot);
      if (!saved) throw new Error(`host swap slot ${slot} holds no block`);
      this.#pools.forEach((pool, p) => pool.set(saved.subarray(p * f, (p + 1) * f), block * f));
      this.#slots.delete(slot);
    }
  }
}
