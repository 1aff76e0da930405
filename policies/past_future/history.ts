/**
 * The "past" of Past-Future: a window of the output lengths of recently finished
 * requests, kept sorted, with the two draws the admission rule makes from it
 * (Past-Future spec, section 2.3).
 *
 * @module
 */

import type { Rng } from "../../kernels/sim/rng.ts";

/** A ring buffer of the last `window` finished output lengths, also kept sorted. */
export class LengthHistory {
  /** Most lengths kept. */
  readonly window: number;
  readonly #ring: number[] = [];
  #next = 0;
  readonly #sorted: number[] = [];

  /** Start with `window / 2` copies of `initial` (the prior before anything finished). */
  constructor(window: number, initial: number) {
    this.window = window;
    const fill = Math.max(1, Math.floor(window / 2));
    for (let i = 0; i < fill; i++) this.push(initial);
  }

  /** Lengths held. */
  get size(): number {
    return this.#ring.length;
  }

  /** The lengths in ascending order (do not modify). */
  get sorted(): readonly number[] {
    return this.#sorted;
  }

  /** Record a finished request's output length, dropping the oldest when full. */
  push(length: number): void {
    if (this.#ring.length < this.window) {
      this.#ring.push(length);
    } else {
      const old = this.#ring[this.#next];
      this.#ring[this.#next] = length;
      this.#next = (this.#next + 1) % this.window;
      this.#sorted.splice(lowerBound(this.#sorted, old), 1);
    }
    this.#sorted.splice(upperBound(this.#sorted, length), 0, length);
  }

  /** The lengths in the order they were recorded, oldest first. */
  values(): number[] {
    return [...this.#ring.slice(this.#next), ...this.#ring.slice(0, this.#next)];
  }

  /** An unconditional draw (a random recorded length), capped at `cap`. */
  draw(rng: Rng, cap: number): number {
    const h = this.#ring[Math.floor(rng.next() * this.#ring.length)];
    return Math.min(h, cap);
  }

  /**
   * A total output length for a request that has produced `generated` tokens and may
   * produce at most `cap`: the inverse CDF, linearly interpolated, of the support
   * `[generated, recorded lengths above it and below cap, cap]`.
   */
  drawConditional(rng: Rng, generated: number, cap: number): number {
    if (generated >= cap) return generated;
    const s = this.#sorted;
    const lo = upperBound(s, generated);
    const hi = lowerBound(s, cap);
    const inner = Math.max(0, hi - lo);
    const u = rng.next() * (inner + 1);
    const i = Math.floor(u);
    const at = (k: number): number => k === 0 ? generated : k <= inner ? s[lo + k - 1] : cap;
    const a = at(i), b = at(i + 1);
    return Math.round(a + (b - a) * (u - i));
  }
}

/** First index whose value is >= x. */
export function lowerBound(a: readonly number[], x: number): number {
  let lo = 0, hi = a.length;
  while (lo < hi) {
    const m = (lo + hi) >>> 1;
    if (a[m] < x) lo = m + 1;
    else hi = m;
  }
  return lo;
}

/** First index whose value is > x. */
export function upperBound(a: readonly number[], x: number): number {
  let lo = 0, hi = a.length;
  while (lo < hi) {
    const m = (lo + hi) >>> 1;
    if (a[m] <= x) lo = m + 1;
    else hi = m;
  }
  return lo;
}
