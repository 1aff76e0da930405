/**
 * Summary statistics with numpy's conventions (what `vllm bench serve` prints): the mean,
 * the population standard deviation, and percentiles by linear interpolation between the
 * two nearest ranks.
 *
 * @module
 */

/** Mean; 0 for an empty list (numpy warns and returns nan; vLLM passes `or 0`). */
export function mean(xs: ArrayLike<number>): number {
  if (xs.length === 0) return 0;
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  return s / xs.length;
}

/** Population standard deviation (numpy `std`, ddof 0); 0 for an empty list. */
export function std(xs: ArrayLike<number>): number {
  if (xs.length === 0) return 0;
  const m = mean(xs);
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += (xs[i] - m) ** 2;
  return Math.sqrt(s / xs.length);
}

/** Sorted copy as a Float64Array (numeric order). */
export function sorted(xs: ArrayLike<number>): Float64Array {
  return Float64Array.from(xs as ArrayLike<number>).sort();
}

/** Percentile `p` (0..100) of already sorted values, numpy's "linear" method; 0 when empty. */
export function percentileSorted(s: ArrayLike<number>, p: number): number {
  const n = s.length;
  if (n === 0) return 0;
  const rank = (p / 100) * (n - 1);
  const lo = Math.floor(rank);
  const hi = Math.min(n - 1, lo + 1);
  return s[lo] + (s[hi] - s[lo]) * (rank - lo);
}

/** Percentile `p` (0..100) of unsorted values. */
export function percentile(xs: ArrayLike<number>, p: number): number {
  return percentileSorted(sorted(xs), p);
}

/** Mean, median, standard deviation and chosen percentiles of a list. */
export interface Distribution {
  /** Mean. */
  mean: number;
  /** Median (50th percentile). */
  median: number;
  /** Population standard deviation. */
  std: number;
  /** Percentile values, keyed by the percentile ("p90", "p99", "p99.9"). */
  percentiles: Record<string, number>;
}

/** Summarize a list of values. */
export function distribution(xs: ArrayLike<number>, ps: readonly number[]): Distribution {
  const s = sorted(xs);
  const percentiles: Record<string, number> = {};
  for (const p of ps) percentiles[`p${p}`] = percentileSorted(s, p);
  return { mean: mean(s), median: percentileSorted(s, 50), std: std(s), percentiles };
}

/** A growable list of numbers in a typed array (cheap appends). */
export class NumberList {
  #a = new Float64Array(1024);
  #n = 0;
  /** Values stored. */
  get length(): number {
    return this.#n;
  }
  /** Append a value. */
  push(x: number): void {
    if (this.#n === this.#a.length) {
      const b = new Float64Array(this.#a.length * 2);
      b.set(this.#a);
      this.#a = b;
    }
    this.#a[this.#n++] = x;
  }
  /** The values (a view; valid until the next push). */
  view(): Float64Array {
    return this.#a.subarray(0, this.#n);
  }
}

/**
 * A list of numbers stored as runs of equal values (value, count): the inter-token gaps
 * of one step are mostly equal, so millions of gaps take little memory and sort fast.
 */
export class RunLengthList {
  #values = new Float64Array(1024);
  #counts = new Float64Array(1024);
  #n = 0;
  #total = 0;
  /** Number of values (counts summed). */
  get length(): number {
    return this.#total;
  }
  /** Append a value, `count` times. */
  push(x: number, count = 1): void {
    this.#total += count;
    const n = this.#n;
    if (n > 0 && this.#values[n - 1] === x) {
      this.#counts[n - 1] += count;
      return;
    }
    if (n === this.#values.length) {
      const v = new Float64Array(n * 2), c = new Float64Array(n * 2);
      v.set(this.#values);
      c.set(this.#counts);
      this.#values = v;
      this.#counts = c;
    }
    this.#values[n] = x;
    this.#counts[n] = count;
    this.#n = n + 1;
  }
  /** The runs: values and their counts (views, valid until the next push). */
  runs(): { values: Float64Array; counts: Float64Array } {
    return { values: this.#values.subarray(0, this.#n), counts: this.#counts.subarray(0, this.#n) };
  }
}

/** {@link distribution} of values given with multiplicities, exactly as if expanded. */
export function weightedDistribution(
  values: ArrayLike<number>,
  counts: ArrayLike<number>,
  ps: readonly number[],
  scale = 1,
): Distribution {
  const m = values.length;
  const idx = Array.from({ length: m }, (_, i) => i).sort((a, b) => values[a] - values[b]);
  let n = 0, sum = 0;
  for (let i = 0; i < m; i++) {
    n += counts[i];
    sum += values[i] * scale * counts[i];
  }
  const percentiles: Record<string, number> = {};
  if (n === 0) {
    for (const p of ps) percentiles[`p${p}`] = 0;
    return { mean: 0, median: 0, std: 0, percentiles };
  }
  const mu = sum / n;
  let ss = 0;
  for (let i = 0; i < m; i++) ss += counts[i] * (values[i] * scale - mu) ** 2;
  // Value at position k (0-based) of the expanded sorted list.
  const at = (k: number): number => {
    let c = 0;
    for (const i of idx) {
      c += counts[i];
      if (k < c) return values[i] * scale;
    }
    return values[idx[m - 1]] * scale;
  };
  const pct = (p: number): number => {
    const rank = (p / 100) * (n - 1);
    const lo = Math.floor(rank);
    const a = at(lo);
    const b = lo + 1 <= n - 1 ? at(lo + 1) : a;
    return a + (b - a) * (rank - lo);
  };
  for (const p of ps) percentiles[`p${p}`] = pct(p);
  return { mean: mu, median: pct(50), std: Math.sqrt(ss / n), percentiles };
}
