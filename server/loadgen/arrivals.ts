/**
 * Send times of a benchmark, as `vllm bench serve` draws them: all at once for an
 * infinite rate, otherwise gamma-distributed gaps (shape = burstiness; 1 is Poisson)
 * rescaled so the last request goes out at exactly `n / rate` seconds.
 *
 * @module
 */

import { Rng } from "../../kernels/sim/rng.ts";

/** Send offsets in seconds from the start, one per request. */
export function sendTimes(n: number, rate: number, burstiness: number, seed: number): number[] {
  const out = new Array<number>(n).fill(0);
  if (!Number.isFinite(rate) || n === 0) return out;
  const rng = new Rng(seed);
  let t = 0;
  for (let i = 0; i < n; i++) {
    // Gamma(shape k, scale 1 / (rate k)) has mean 1 / rate; k = 1 is exponential.
    t += rng.gamma(burstiness, 1 / (rate * burstiness));
    out[i] = t;
  }
  // Rescale so the schedule lasts exactly n / rate seconds (vLLM does the same, to keep
  // throughput comparable across seeds).
  const scale = n / rate / out[n - 1];
  for (let i = 0; i < n; i++) out[i] *= scale;
  return out;
}
