/**
 * ListMLE training of the linear ranker (Learning-to-Rank spec, section 3.2): each list
 * is sorted by its true labels (shorter output first, ties in random order) and the
 * negative log-likelihood of that permutation under a Plackett-Luce model with item
 * weights exp(score) is minimised with Adam (sparse, lazy moments) and decoupled weight
 * decay.
 *
 * @module
 */

import { Rng } from "../../kernels/sim/rng.ts";
import type { SparseVector } from "./features.ts";
import { LinearRanker } from "./ranker.ts";
import type { FeatureConfig } from "./features.ts";
import { DEFAULT_FEATURES } from "./features.ts";

/** One training item: a prompt's features and its true output length. */
export interface Example {
  /** Prompt features. */
  x: SparseVector;
  /** True output length, tokens. */
  length: number;
}

/** Training settings. */
export interface TrainOptions {
  /** Items per list (the paper's batch: 32, or 64 after its sensitivity study). */
  listSize: number;
  /** Passes over the data. */
  epochs: number;
  /** Adam step size. */
  lr: number;
  /** Decoupled weight decay. */
  weightDecay: number;
  /** Label bucket in tokens (the paper's 10). */
  bucket: number;
  /** Lengths above this are treated as equal (the paper's 8,192). */
  cap: number;
  /** Shuffling seed. */
  seed: number;
}

/** The defaults. */
export const DEFAULT_TRAIN: Readonly<TrainOptions> = Object.freeze({
  listSize: 32,
  epochs: 10,
  lr: 0.005,
  weightDecay: 0.01,
  bucket: 10,
  cap: 8192,
  seed: 0,
});

/** The paper's label: the reversed bucket of the length, so shorter is larger. */
export function rankLabel(length: number, bucket: number, cap: number): number {
  return Math.floor(cap / bucket) - Math.floor(Math.min(length, cap) / bucket);
}

/** Dot product of a sparse vector with dense weights. */
export function sparseDot(x: SparseVector, w: Float32Array): number {
  let s = 0;
  for (let k = 0; k < x.index.length; k++) s += w[x.index[k]] * x.value[k];
  return s;
}

/** Adam over a ranker's weights, one ListMLE list per step. */
export class ListMleTrainer {
  /** The ranker being trained (its weights change in place). */
  readonly ranker: LinearRanker;
  readonly #o: TrainOptions;
  readonly #m: Float32Array;
  readonly #v: Float32Array;
  readonly #g: Float32Array;
  readonly #touched: Int32Array;
  #t = 0;
  readonly #rng: Rng;

  /** Train `ranker` in place. */
  constructor(ranker: LinearRanker, options: Partial<TrainOptions> = {}) {
    this.ranker = ranker;
    this.#o = { ...DEFAULT_TRAIN, ...options };
    const d = ranker.weights.length;
    this.#m = new Float32Array(d);
    this.#v = new Float32Array(d);
    this.#g = new Float32Array(d);
    this.#touched = new Int32Array(d);
    this.#rng = new Rng(this.#o.seed ^ 0x11e7);
  }

  /** One Adam step on one list; returns the list's ListMLE loss per item. */
  step(list: readonly Example[]): number {
    const n = list.length;
    if (n < 2) return 0;
    const o = this.#o;
    const w = this.ranker.weights;
    // Random order first, so a stable sort breaks ties at random.
    const items = list.map((e) => ({
      e,
      label: rankLabel(e.length, o.bucket, o.cap),
      s: 0,
      u: this.#rng.next(),
    }));
    items.sort((a, b) => b.label - a.label || a.u - b.u);
    let max = -Infinity;
    for (const it of items) {
      it.s = sparseDot(it.e.x, w);
      if (it.s > max) max = it.s;
    }
    const e = new Float64Array(n), z = new Float64Array(n);
    for (let k = 0; k < n; k++) e[k] = Math.exp(items[k].s - max);
    let acc = 0;
    for (let k = n - 1; k >= 0; k--) z[k] = acc += e[k];
    let loss = 0, inv = 0, nt = 0;
    const g = this.#g, touched = this.#touched;
    for (let k = 0; k < n; k++) {
      loss += Math.log(z[k]) + max - items[k].s;
      inv += 1 / z[k];
      const gk = (e[k] * inv - 1) / n;
      const x = items[k].e.x;
      for (let q = 0; q < x.index.length; q++) {
        const i = x.index[q];
        if (g[i] === 0) touched[nt++] = i;
        g[i] += gk * x.value[q];
        if (g[i] === 0) g[i] = 1e-30;
      }
    }
    this.#t++;
    const b1 = 0.9, b2 = 0.999, eps = 1e-8;
    const c1 = 1 - b1 ** this.#t, c2 = 1 - b2 ** this.#t;
    for (let q = 0; q < nt; q++) {
      const i = touched[q];
      const gi = g[i];
      g[i] = 0;
      this.#m[i] = b1 * this.#m[i] + (1 - b1) * gi;
      this.#v[i] = b2 * this.#v[i] + (1 - b2) * gi * gi;
      w[i] -= o.lr *
        ((this.#m[i] / c1) / (Math.sqrt(this.#v[i] / c2) + eps) + o.weightDecay * w[i]);
    }
    return loss / n;
  }

  /** One pass over `data` in random lists of `listSize`; returns the mean loss. */
  epoch(data: readonly Example[]): number {
    const order = data.map((_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(this.#rng.next() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    let loss = 0, lists = 0;
    const size = this.#o.listSize;
    for (let s = 0; s + 1 < order.length; s += size) {
      const list = order.slice(s, s + size).map((i) => data[i]);
      loss += this.step(list);
      lists++;
    }
    return lists > 0 ? loss / lists : 0;
  }
}

/** Train a fresh ranker on `data` for `epochs` passes. */
export function trainRanker(
  data: readonly Example[],
  features: FeatureConfig = DEFAULT_FEATURES,
  options: Partial<TrainOptions> = {},
  onEpoch?: (epoch: number, loss: number) => void,
): LinearRanker {
  const o = { ...DEFAULT_TRAIN, ...options };
  const ranker = new LinearRanker(features);
  const trainer = new ListMleTrainer(ranker, o);
  for (let ep = 0; ep < o.epochs; ep++) {
    const loss = trainer.epoch(data);
    onEpoch?.(ep + 1, loss);
  }
  return ranker;
}
