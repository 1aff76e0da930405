/**
 * Prompt features for the ranking predictor, computed from token ids alone (so they work
 * with any tokenizer): hashed n-grams of 1 to `maxN` tokens over the whole prompt,
 * n-grams of the first `headTokens` tokens hashed apart (instructions tend to open a
 * prompt), and the prompt's length (its log, and a one-hot log2 bucket). The paper's
 * predictor is a 125M-parameter model over the prompt; this one scores in microseconds
 * (Learning-to-Rank spec, section 3.2).
 *
 * @module
 */

import type { TokenIds } from "../../core/types.ts";
/** How prompts become feature vectors. */
export interface FeatureConfig {
  /** Hashed feature slots (a power of two). */
  dim: number;
  /** Longest n-gram, in tokens. */
  maxN: number;
  /** Leading tokens whose n-grams also get features of their own (0: none). */
  headTokens: number;
}

/** The defaults used by `train-ranker` and the online mode. */
export const DEFAULT_FEATURES: Readonly<FeatureConfig> = Object.freeze({
  dim: 1 << 14,
  maxN: 4,
  headTokens: 48,
});

/** A sparse feature vector. */
export interface SparseVector {
  /** Slot indices (distinct). */
  index: Int32Array;
  /** Values at those slots. */
  value: Float32Array;
}

// Slots reserved at the end of the vector for the length features.
const LENGTH_SLOTS = 18;

/** Turns prompts into sparse vectors; one instance reuses its scratch buffers. */
export class Featurizer {
  /** Its configuration. */
  readonly config: Readonly<FeatureConfig>;
  readonly #acc: Float32Array;
  readonly #touched: Int32Array;
  #n = 0;
  readonly #mask: number;

  /** `config.dim` must be a power of two larger than the length slots. */
  constructor(config: FeatureConfig = DEFAULT_FEATURES) {
    const d = config.dim;
    if (!Number.isInteger(d) || d < 64 || (d & (d - 1)) !== 0) {
      throw new RangeError(`feature dim must be a power of two of at least 64, got ${d}`);
    }
    this.config = { ...config };
    this.#acc = new Float32Array(d);
    this.#touched = new Int32Array(d);
    this.#mask = d - LENGTH_SLOTS - 1;
  }

  /** The score of `tokens` under linear `weights` without building a vector. */
  dot(tokens: TokenIds, weights: Float32Array): number {
    this.#fill(tokens);
    let s = 0;
    for (let k = 0; k < this.#n; k++) {
      const i = this.#touched[k];
      s += weights[i] * this.#acc[i];
      this.#acc[i] = 0;
    }
    this.#n = 0;
    return s;
  }

  /** The sparse vector of `tokens`. */
  vector(tokens: TokenIds): SparseVector {
    this.#fill(tokens);
    const n = this.#n;
    const index = new Int32Array(n), value = new Float32Array(n);
    for (let k = 0; k < n; k++) {
      const i = this.#touched[k];
      index[k] = i;
      value[k] = this.#acc[i];
      this.#acc[i] = 0;
    }
    this.#n = 0;
    return { index, value };
  }

  #add(slot: number, v: number): void {
    if (this.#acc[slot] === 0) this.#touched[this.#n++] = slot;
    this.#acc[slot] += v;
    // A sum that lands on exactly 0 would be forgotten: nudge it.
    if (this.#acc[slot] === 0) this.#acc[slot] = 1e-30;
  }

  #fill(tokens: TokenIds): void {
    const { maxN, headTokens } = this.config;
    const len = tokens.length;
    const w = 1 / Math.sqrt(Math.max(1, len));
    const head = Math.min(len, headTokens);
    const wh = 1 / Math.sqrt(Math.max(1, head));
    const mask = this.#mask;
    for (let i = 0; i < len; i++) {
      let h = 0x811c9dc5;
      for (let n = 1; n <= maxN && i + n <= len; n++) {
        h = Math.imul(h ^ (tokens[i + n - 1] + 1), 0x01000193);
        this.#add(mix(h ^ n) & mask, w);
        if (i + n <= head) this.#add(mix(h ^ (n + 0x3c00)) & mask, wh);
      }
    }
    // Length: log length, and which power of two it falls in.
    const base = this.config.dim - LENGTH_SLOTS;
    this.#add(base, Math.log1p(len) / 8);
    this.#add(base + 1 + Math.min(LENGTH_SLOTS - 2, Math.floor(Math.log2(len + 1))), 1);
  }
}

function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}
