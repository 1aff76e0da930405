/**
 * Token sampling: greedy, temperature, top-k and top-p, with an optional log-probability
 * report, shared by every real executor.
 *
 * The random draw for a request's `i`-th output token is `uniform(seed, i)`: a pure
 * function of the request's seed and the output index, never of the batch it ran in or of
 * call order (DESIGN.md, "Deterministic"). It uses 32-bit integer operations only, so a
 * WASM or WGSL kernel reproduces it bit for bit.
 *
 * Recipe (all arithmetic modulo 2^32, `>>` logical):
 * ```
 * mix32(x):  x ^= x >> 16; x *= 0x7feb352d; x ^= x >> 15; x *= 0x846ca68b; x ^= x >> 16
 * key      = mix32(seed ^ 0x3c6ef372)           seed reduced to u32 (two's complement)
 * h        = mix32(mix32(index ^ key) + key)    index reduced to u32
 * uniform  = (h >> 8) / 2^24                    in [0, 1), exact in f32
 * ```
 *
 * Sampling a token, when `temperature > 0`:
 * 1. top-k: keep the k most probable tokens (ranked by logit, NaN as minus infinity;
 *    ties: the lower id first);
 * 2. `p = softmax(logits / temperature)` over the kept tokens (all tokens without top-k);
 * 3. top-p: keep the smallest prefix of them, most probable first, whose share of their
 *    mass reaches `topP`;
 * 4. draw `u = uniform(seed, outputIndex)` and walk the kept tokens in increasing id
 *    order, taking the first whose cumulative mass exceeds `u` times the kept mass.
 *
 * With top-k, the token is a function of the k kept (id, logit) pairs alone
 * ({@link sampleTopK}), so an executor can select them on its device and read back k pairs
 * instead of the vocabulary's logits, and still draw exactly the token every other
 * executor draws.
 *
 * @module
 */

import type { SamplingParams, TokenLogprob } from "./types.ts";

/** Greedy sampling with no stop condition: for internal passes (profiling, prompt KV). */
export const GREEDY: Readonly<SamplingParams> = Object.freeze({
  temperature: 0,
  topK: 0,
  topP: 1,
  seed: 0,
  maxTokens: 1,
  stopTokenIds: [],
  stop: [],
  ignoreEos: true,
  logprobs: -1,
});

/**
 * A 32-bit integer finaliser (a bijection of u32 with good avalanche; the "lowbias32"
 * constants). Returns a u32.
 */
export function mix32(x: number): number {
  x = x >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/**
 * A counter-based uniform draw in [0, 1): depends only on `(seed, index)`, both reduced
 * to u32. The result is a multiple of 2^-24, so it is exact in f32 as well.
 */
export function uniform(seed: number, index: number): number {
  const key = mix32((seed >>> 0) ^ 0x3c6ef372);
  const h = mix32((mix32((index >>> 0) ^ key) + key) >>> 0);
  return (h >>> 8) / 16777216;
}

/**
 * Sample one token from `logits` under `params`; `outputIndex` is the index of this token
 * among the request's outputs (it selects the random draw). `logprob` (the token's
 * log-probability and the top alternatives) is set when `params.logprobs >= 0`.
 */
export function sampleToken(
  logits: Float32Array,
  params: SamplingParams,
  outputIndex: number,
): { token: number; logprob?: TokenLogprob } {
  if (logits.length === 0) throw new RangeError("cannot sample from empty logits");
  const token = params.temperature > 0
    ? sampleStochastic(logits, params, outputIndex)
    : argmax(logits);
  if (params.logprobs >= 0) {
    return { token, logprob: tokenLogprob(logits, token, params.logprobs) };
  }
  return { token };
}

/** Index of the largest value; ties go to the lowest index; NaN never wins. */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < values.length; i++) {
    if (values[i] > bestValue) {
      bestValue = values[i];
      best = i;
    }
  }
  return best;
}

/**
 * Log-softmax of the raw (unscaled) logits at `token`, plus the `topN` most likely
 * tokens, most likely first (ties: lower id first).
 */
export function tokenLogprob(logits: Float32Array, token: number, topN: number): TokenLogprob {
  const logZ = logSumExp(logits);
  const top = topIndices(logits, Math.min(topN, logits.length)).map((t) => ({
    token: t,
    logprob: logits[t] - logZ,
  }));
  return { logprob: logits[token] - logZ, top };
}

function logSumExp(logits: Float32Array): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  if (max === -Infinity) return -Infinity;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  return max + Math.log(sum);
}

/** True when token `a` (value `va`) ranks before token `b` (value `vb`). */
function ranksBefore(va: number, a: number, vb: number, b: number): boolean {
  return va > vb || (va === vb && a < b);
}

/**
 * The `k` indices with the largest values, largest first, ties to the lower index. An
 * insertion into a sorted list of k, so it is cheap when k is small against the length.
 */
function topIndices(values: ArrayLike<number>, k: number): number[] {
  if (k <= 0) return [];
  const idx: number[] = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v !== v) continue; // NaN
    if (idx.length === k && !ranksBefore(v, i, values[idx[k - 1]], idx[k - 1])) continue;
    let j = idx.length < k ? idx.length : k - 1;
    if (idx.length < k) idx.push(i);
    while (j > 0 && ranksBefore(v, i, values[idx[j - 1]], idx[j - 1])) {
      idx[j] = idx[j - 1];
      j--;
    }
    idx[j] = i;
  }
  return idx;
}

const f32 = new Float32Array(1);
const f32Bits = new Uint32Array(f32.buffer);
const ID_SPAN = 2 ** 21; // ids below it pack beside 32 bits of value in a double's 53

/** An unsigned 32-bit image of an f32 value that keeps its order (-0 counts as 0). */
function orderedBits(x: number): number {
  f32[0] = x === 0 ? 0 : x;
  const b = f32Bits[0];
  return b >= 0x80000000 ? ~b >>> 0 : (b | 0x80000000) >>> 0;
}

/**
 * All indices of `ids` sorted by `values` (f32 values or -Infinity) descending, ties to the
 * lower index. Each (value, id) pair is packed into one exact double so the engine's native
 * numeric sort does the work, with no comparator calls (ten times faster on 10^4 ids).
 */
function sortByValue(ids: number[], values: Float64Array): number[] {
  if (values.length > ID_SPAN) {
    return ids.sort((a, b) => (values[b] > values[a] ? 1 : values[b] < values[a] ? -1 : a - b));
  }
  const keys = new Float64Array(ids.length);
  for (let j = 0; j < ids.length; j++) {
    keys[j] = (0xffffffff - orderedBits(values[ids[j]])) * ID_SPAN + ids[j];
  }
  keys.sort();
  for (let j = 0; j < ids.length; j++) ids[j] = keys[j] % ID_SPAN;
  return ids;
}

/** Positions of `ids` in increasing id order (ids are distinct). */
function positionsById(ids: ArrayLike<number>): Int32Array {
  const k = ids.length;
  const out = new Int32Array(k);
  if (k > ID_SPAN) {
    for (let j = 0; j < k; j++) out[j] = j;
    return out.sort((a, b) => ids[a] - ids[b]);
  }
  const keys = new Float64Array(k);
  for (let j = 0; j < k; j++) keys[j] = ids[j] * ID_SPAN + j;
  keys.sort();
  for (let j = 0; j < k; j++) out[j] = keys[j] % ID_SPAN;
  return out;
}

/** A reusable f64 buffer of `n` entries (sampling runs one call at a time). */
function scratch(which: 0 | 1, n: number): Float64Array {
  if (scratchBuffers[which].length < n) scratchBuffers[which] = new Float64Array(n);
  return scratchBuffers[which].subarray(0, n);
}
const scratchBuffers: [Float64Array, Float64Array] = [new Float64Array(0), new Float64Array(0)];

/** Ranks of a row's tokens for top-k and top-p: the logits, NaN as minus infinity. */
function ranks(logits: Float32Array): Float64Array {
  const rank = scratch(1, logits.length);
  for (let i = 0; i < logits.length; i++) rank[i] = logits[i] === logits[i] ? logits[i] : -Infinity;
  return rank;
}

function sampleStochastic(logits: Float32Array, params: SamplingParams, outputIndex: number) {
  const n = logits.length;
  if (params.topK > 0 && params.topK < n) {
    const ids = topIndices(ranks(logits), params.topK);
    return sampleTopK(ids, Float32Array.from(ids, (t) => logits[t]), params, outputIndex);
  }
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (logits[i] > max) max = logits[i];
  if (max === -Infinity || max !== max) return argmax(logits);
  const probs = temperedSoftmax(logits, max, params.temperature, scratch(0, n));
  // Ranks come from the logits themselves, so tokens whose probabilities round to the
  // same value still rank by logit.
  const rank = params.topP < 1 ? ranks(logits) : undefined;
  return drawKept(probs, rank, undefined, params, outputIndex);
}

/**
 * Sample a token (`params.temperature > 0`) from the top-k candidates of a logits row:
 * `ids` are the row's `params.topK` most probable tokens in any order (ranked as in step 1
 * of the module's recipe) and `logits[j]` is the logit of `ids[j]`. Returns the token
 * {@link sampleToken} draws from the whole row: both run this function on the same pairs.
 * An executor that selects the candidates on its device reads back only these pairs.
 */
export function sampleTopK(
  ids: ArrayLike<number>,
  logits: ArrayLike<number>,
  params: SamplingParams,
  outputIndex: number,
): number {
  const k = ids.length;
  if (k === 0 || logits.length !== k) {
    throw new RangeError(`top-k candidates need one logit per id (got ${k} ids)`);
  }
  // Candidates in id order (indices into `byId` are then ranked with ties to the lower id).
  const order = positionsById(ids);
  const byId = new Int32Array(k);
  const value = new Float64Array(k);
  for (let j = 0; j < k; j++) {
    const at = order[j];
    byId[j] = ids[at];
    const v = logits[at];
    value[j] = v === v ? v : -Infinity;
  }
  const ranked = sortByValue(Array.from({ length: k }, (_, j) => j), value);
  const max = value[ranked[0]];
  // Every logit is minus infinity or NaN: the whole row's argmax is token 0.
  if (max === -Infinity) return 0;
  const probs = temperedSoftmax(value, max, params.temperature, new Float64Array(k));
  return byId[drawKept(probs, value, ranked, params, outputIndex)];
}

/** Step 2: `softmax(values / temperature)` in f64 into `out` (NaN weighs 0). */
function temperedSoftmax(
  values: ArrayLike<number>,
  max: number,
  temperature: number,
  out: Float64Array,
): Float64Array {
  let total = 0;
  for (let i = 0; i < out.length; i++) {
    const p = Math.exp((values[i] - max) / temperature);
    out[i] = p === p ? p : 0;
    total += out[i];
  }
  for (let i = 0; i < out.length; i++) out[i] /= total;
  return out;
}

/**
 * Steps 3 and 4: top-p over the candidates of `probs` (needs `rank`, and the candidates
 * `ranked` when already sorted), then the inverse CDF in id order. Returns an index of
 * `probs`.
 */
function drawKept(
  probs: Float64Array,
  rank: Float64Array | undefined,
  ranked: number[] | undefined,
  params: SamplingParams,
  outputIndex: number,
): number {
  const u = uniform(params.seed, outputIndex);
  if (params.topP >= 1 || rank === undefined) return drawInIdOrder(probs, undefined, u);
  const kept = nucleus(probs, rank, ranked, params.topP);
  return drawInIdOrder(probs, Int32Array.from(kept).sort(), u);
}

/**
 * The smallest prefix of the ranked candidates (all tokens when `ranked` is undefined)
 * whose share of the candidates' mass reaches `topP`. Without a ranking, only tokens of
 * probability at least `(1 - topP) / n` can be in the nucleus once their mass reaches
 * `topP` (the rest weigh less than `1 - topP` together), so only they are sorted.
 */
function nucleus(
  probs: Float64Array,
  rank: Float64Array,
  ranked: number[] | undefined,
  topP: number,
): number[] {
  let keptMass = 0;
  if (ranked === undefined) {
    const n = probs.length;
    const threshold = (1 - topP) / n;
    const candidates: number[] = [];
    let mass = 0;
    for (let i = 0; i < n; i++) {
      keptMass += probs[i];
      if (probs[i] >= threshold) {
        candidates.push(i);
        mass += probs[i];
      }
    }
    const all = mass >= topP * keptMass ? candidates : Array.from({ length: n }, (_, i) => i);
    ranked = sortByValue(all, rank);
  } else {
    for (const t of ranked) keptMass += probs[t];
  }
  let cum = 0;
  for (let j = 0; j < ranked.length; j++) {
    cum += probs[ranked[j]];
    if (cum >= topP * keptMass) return ranked.slice(0, j + 1);
  }
  return ranked;
}

/** Inverse CDF over the kept ids (all ids when undefined), walked in increasing id order. */
function drawInIdOrder(probs: Float64Array, ids: Int32Array | undefined, u: number): number {
  const count = ids ? ids.length : probs.length;
  let mass = 0;
  for (let j = 0; j < count; j++) mass += probs[ids ? ids[j] : j];
  const target = u * mass;
  let cum = 0;
  let last = -1;
  for (let j = 0; j < count; j++) {
    const t = ids ? ids[j] : j;
    if (probs[t] <= 0) continue;
    cum += probs[t];
    last = t;
    if (cum > target) return t;
  }
  // Rounding left `target` just above the sum: the last token with mass wins.
  return last >= 0 ? last : (ids ? ids[0] : 0);
}
