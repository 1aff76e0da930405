/**
 * A small seeded random-number generator (SplitMix32 state, Mulberry32 output) and the
 * draws the simulator needs. The same seed gives the same sequence on every platform.
 *
 * @module
 */

/** Seeded uniform random numbers. */
export class Rng {
  #s: number;

  /** Start from `seed` (any number; only its low 32 bits matter). */
  constructor(seed: number) {
    this.#s = (seed | 0) ^ 0x9e3779b9;
  }

  /** A uniform float in [0, 1). */
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** A uniform integer in [lo, hi], both included. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** An exponential draw with the given mean. */
  exp(mean: number): number {
    return -Math.log(1 - this.next()) * mean;
  }

  /** A standard normal draw (Box-Muller). */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** A gamma draw with shape `k` and scale `theta` (Marsaglia-Tsang). */
  gamma(k: number, theta: number): number {
    if (k < 1) {
      // Boost: Gamma(k) = Gamma(k + 1) * U^(1/k).
      const u = this.next();
      return this.gamma(k + 1, theta) * Math.pow(u === 0 ? 1e-300 : u, 1 / k);
    }
    const d = k - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = this.normal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = this.next();
      if (u < 1 - 0.0331 * x * x * x * x) return d * v * theta;
      if (Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v * theta;
    }
  }

  /** An independent generator derived from this one and a label (for sub-streams). */
  fork(label: number): Rng {
    return new Rng(Math.floor(this.next() * 4294967296) ^ Math.imul(label + 1, 0x85ebca6b));
  }
}
