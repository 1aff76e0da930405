/**
 * The "future" of Past-Future: the exact peak KV occupancy of a batch whose requests
 * each hold `c` tokens and will generate `r` more, one per step, with no new arrivals.
 * Sorted by `r` descending, just before the k-th request finishes the first k are alive
 * and each has grown by `r_k`, so the peak is `max_k (sum_{j<=k} c_j + k * r_k)`
 * (Past-Future spec, section 2.2). Also the admission rule built on it, shared by
 * `past-future` (sampled lengths) and `oracle` (true lengths).
 *
 * @module
 */

import type { EngineView, RequestView } from "../../core/types.ts";

/** The peak of `(c, r)` pairs by the formula, for reference and tests. */
export function futurePeak(items: readonly (readonly [number, number])[]): number {
  const s = [...items].sort((a, b) => b[1] - a[1]);
  let sum = 0, peak = 0;
  for (let k = 0; k < s.length; k++) {
    sum += s[k][0];
    peak = Math.max(peak, sum + (k + 1) * s[k][1]);
  }
  return peak;
}

/** One scenario: `(c, r)` pairs kept sorted by `r`, longest first. */
export class Scenario {
  #c = new Float64Array(64);
  #r = new Float64Array(64);
  #n = 0;
  #keys = new Float64Array(64);
  #tc = new Float64Array(64);
  #tr = new Float64Array(64);

  /** Pairs held. */
  get size(): number {
    return this.#n;
  }

  /** Replace the content with the given pairs (any order). */
  load(c: ArrayLike<number>, r: ArrayLike<number>, n: number): void {
    this.#grow(n + 1);
    // Sort by r through packed keys (r and index in one exact double): no comparator calls.
    const bits = Math.max(1, Math.ceil(Math.log2(n + 1)));
    const scale = 2 ** bits;
    const keys = this.#keys.subarray(0, n);
    for (let i = 0; i < n; i++) {
      keys[i] = Math.min(Math.round(Math.max(0, r[i])), 2 ** (52 - bits) - 1) * scale + i;
    }
    keys.sort();
    for (let k = 0; k < n; k++) {
      const i = keys[n - 1 - k] % scale;
      this.#c[k] = c[i];
      this.#r[k] = r[i];
    }
    this.#n = n;
  }

  /** The peak of the held pairs plus `(c0, r0)`, without adding it. */
  peakWith(c0: number, r0: number): number {
    let sum = 0, peak = 0, k = 0, placed = false;
    const n = this.#n, c = this.#c, r = this.#r;
    for (let i = 0; i < n; i++) {
      if (!placed && r0 >= r[i]) {
        placed = true;
        sum += c0;
        k++;
        const p = sum + k * r0;
        if (p > peak) peak = p;
      }
      sum += c[i];
      k++;
      const p = sum + k * r[i];
      if (p > peak) peak = p;
    }
    if (!placed) {
      sum += c0;
      k++;
      const p = sum + k * r0;
      if (p > peak) peak = p;
    }
    return peak;
  }

  /** The peak of the held pairs. */
  peak(): number {
    return this.peakWith(0, 0);
  }

  /** Add a pair, keeping the order. */
  insert(c0: number, r0: number): void {
    this.#grow(this.#n + 1);
    let i = this.#n;
    while (i > 0 && this.#r[i - 1] < r0) {
      this.#c[i] = this.#c[i - 1];
      this.#r[i] = this.#r[i - 1];
      i--;
    }
    this.#c[i] = c0;
    this.#r[i] = r0;
    this.#n++;
  }

  #grow(n: number): void {
    if (n <= this.#c.length) return;
    const size = Math.max(n, this.#c.length * 2);
    const c = new Float64Array(size), r = new Float64Array(size);
    c.set(this.#c);
    r.set(this.#r);
    this.#c = c;
    this.#r = r;
    this.#keys = new Float64Array(size);
    this.#tc = new Float64Array(size);
    this.#tr = new Float64Array(size);
  }

  /** Scratch arrays callers may fill before {@link load} (sized for `n`). */
  scratch(n: number): [Float64Array, Float64Array] {
    this.#grow(n + 1);
    return [this.#tc, this.#tr];
  }
}

/** Where an admission rule gets remaining lengths from. */
export interface LengthSource {
  /** Scenarios to draw for a batch of `n` running requests. */
  scenarios(n: number): number;
  /** Tokens `req` will still generate, drawn for one scenario; `isNew` for a request not yet running. */
  remaining(req: RequestView, isNew: boolean): number;
}

/** How the scenarios' peaks are combined into one estimate. */
export type Aggregation = "max" | "mean";

/**
 * Admission by estimated future peak: admit `req` when the aggregated peak of the
 * running batch, the requests admitted earlier in this step and `req` stays below
 * `(1 - reserve)` of the pool (in tokens). Scenarios are drawn once per step and grow as
 * requests are admitted.
 */
export class PeakAdmission {
  readonly #src: LengthSource;
  readonly #reserve: number;
  readonly #agg: Aggregation;
  #scen: Scenario[] = [];
  #step = -1;
  #added = 0;
  #drawn = new Float64Array(8);
  /** Estimated peak (tokens) of the last decision, for tests and logs. */
  lastPeak = 0;

  /** `reserve` is the fraction of the pool kept as head-room. */
  constructor(src: LengthSource, reserve: number, aggregation: Aggregation) {
    this.#src = src;
    this.#reserve = reserve;
    this.#agg = aggregation;
  }

  /** Decide for `req` (the admission slot's `admit`). */
  admit(req: RequestView, view: EngineView, admitted: readonly RequestView[]): boolean {
    const bs = view.kv.blockSize;
    if (view.step !== this.#step || admitted.length !== this.#added) this.#rebuild(view, admitted);
    const m = this.#scen.length;
    if (this.#drawn.length < m) this.#drawn = new Float64Array(m);
    // Rounding each request up to whole blocks (LightLLM counts tokens, the pool blocks).
    const c = req.numTokens + bs - 1;
    let agg = 0;
    for (let k = 0; k < m; k++) {
      const r = this.#src.remaining(req, true);
      this.#drawn[k] = r;
      const p = this.#scen[k].peakWith(c, r);
      agg = this.#agg === "max" ? Math.max(agg, p) : agg + p / m;
    }
    this.lastPeak = agg;
    const capacity = view.kv.totalBlocks * bs;
    if (!(agg < capacity * (1 - this.#reserve))) return false;
    for (let k = 0; k < m; k++) this.#scen[k].insert(c, this.#drawn[k]);
    this.#added++;
    return true;
  }

  #rebuild(view: EngineView, admitted: readonly RequestView[]): void {
    this.#step = view.step;
    const running = view.running;
    const n = running.length + admitted.length;
    const m = Math.max(1, this.#src.scenarios(n));
    while (this.#scen.length < m) this.#scen.push(new Scenario());
    this.#scen.length = m;
    const bs = view.kv.blockSize;
    for (let k = 0; k < m; k++) {
      const s = this.#scen[k];
      const [c, r] = s.scratch(n);
      let i = 0;
      for (const q of running) {
        c[i] = q.numTokens + bs - 1;
        r[i++] = this.#src.remaining(q, false);
      }
      for (const q of admitted) {
        c[i] = q.numTokens + bs - 1;
        r[i++] = this.#src.remaining(q, true);
      }
      s.load(c, r, n);
    }
    this.#added = admitted.length;
  }
}
