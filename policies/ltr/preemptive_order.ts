/**
 * Preemptive priority ordering, shared by the ranking schedulers (`ltr`, `mlfq`,
 * `oracle-sjf`, `oracle-srtf`). All requests, running and waiting, are sorted by a key
 * (lower first); the step's batch is the greedy prefix of that order under a token and a
 * sequence budget; when the prefix needs more KV blocks (or sequence slots) than are
 * free, the lowest-ranked running requests outside it are preempted, lowest first
 * (Learning-to-Rank spec, section 3.2, `_general_schedule`). Preemption here is by
 * recompute: the engine has no swap space.
 *
 * @module
 */

import type { SchedulerOrder } from "../../core/slots.ts";
import type { EngineView, RequestView } from "../../core/types.ts";

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** An unsigned 32-bit integer that orders like `x` (through its float32 bits). */
export function orderBits(x: number): number {
  f32[0] = Math.fround(x) + 0; // -0 becomes 0: equal keys must get equal images
  const b = u32[0];
  return b & 0x80000000 ? ~b >>> 0 : (b | 0x80000000) >>> 0;
}

/** Budgets the greedy prefix is built under (match the batcher's). */
export interface PreemptiveOrderOptions {
  /** Tokens per step. */
  tokenBudget: number;
  /** Most requests running at once. */
  maxNumSeqs: number;
  /** Fraction of KV blocks kept free. */
  watermark: number;
}

/** Sorts requests by key and picks preemption victims; reuses its buffers between steps. */
export class PreemptiveOrder {
  readonly #o: PreemptiveOrderOptions;
  #keys = new Float64Array(256);
  #idx: number[] = [];
  #rk = new Float64Array(256);
  #bits: [Uint32Array, Uint32Array] = [new Uint32Array(256), new Uint32Array(256)];
  #pos: [Uint32Array, Uint32Array] = [new Uint32Array(256), new Uint32Array(256)];
  readonly #count = new Uint32Array(256);
  readonly #outRunning: RequestView[] = [];
  readonly #outWaiting: RequestView[] = [];
  #wk = new Float64Array(256);

  /** Budgets as the batcher uses them. */
  constructor(options: PreemptiveOrderOptions) {
    this.#o = options;
  }

  /** Order both queues by `keyOf` (lower first; ties keep the engine's order) and pick victims. */
  order(view: EngineView, keyOf: (req: RequestView) => number): SchedulerOrder {
    const running = this.#sort(view.running, keyOf, this.#outRunning);
    this.#rk = this.#copyKeys(this.#rk, running.length);
    const waiting = this.#sort(view.waiting, keyOf, this.#outWaiting);
    this.#wk = this.#copyKeys(this.#wk, waiting.length);
    const preempt = this.#victims(view, running, waiting);
    return preempt.length > 0 ? { running, waiting, preempt } : { running, waiting };
  }

  #copyKeys(into: Float64Array<ArrayBuffer>, n: number): Float64Array<ArrayBuffer> {
    if (into.length < n) into = new Float64Array(Math.max(n, into.length * 2));
    const idx = this.#idx, keys = this.#keys;
    for (let i = 0; i < n; i++) into[i] = keys[idx[i]];
    return into;
  }

  // The order's arrays are reused from step to step (the engine reads them within a step).
  #sort(
    list: readonly RequestView[],
    keyOf: (req: RequestView) => number,
    out: RequestView[],
  ): RequestView[] {
    const n = list.length;
    if (this.#keys.length < n) {
      const size = Math.max(n, this.#keys.length * 2);
      this.#keys = new Float64Array(size);
      this.#bits = [new Uint32Array(size), new Uint32Array(size)];
      this.#pos = [new Uint32Array(size), new Uint32Array(size)];
    }
    const keys = this.#keys;
    let sorted = true;
    for (let i = 0; i < n; i++) {
      keys[i] = keyOf(list[i]);
      if (i > 0 && keys[i] < keys[i - 1]) sorted = false;
    }
    const idx = this.#idx;
    idx.length = n;
    if (sorted) {
      for (let i = 0; i < n; i++) idx[i] = i;
    } else {
      const order = this.#radix(n);
      for (let i = 0; i < n; i++) idx[i] = order[i];
    }
    out.length = n;
    for (let i = 0; i < n; i++) out[i] = list[idx[i]];
    return out;
  }

  /**
   * Stable LSD radix sort of the keys' order-preserving 32-bit images, a byte per pass:
   * linear time, no comparator calls. Returns the positions in sorted order.
   */
  #radix(n: number): Uint32Array {
    let [bits, alt] = this.#bits;
    let [pos, altPos] = this.#pos;
    const count = this.#count;
    for (let i = 0; i < n; i++) {
      bits[i] = orderBits(this.#keys[i]);
      pos[i] = i;
    }
    for (let shift = 0; shift < 32; shift += 8) {
      count.fill(0);
      for (let i = 0; i < n; i++) count[(bits[i] >>> shift) & 255]++;
      if (count[(bits[0] >>> shift) & 255] === n) continue; // every key shares this byte
      let sum = 0;
      for (let b = 0; b < 256; b++) {
        const c = count[b];
        count[b] = sum;
        sum += c;
      }
      for (let i = 0; i < n; i++) {
        const b = (bits[i] >>> shift) & 255;
        const to = count[b]++;
        alt[to] = bits[i];
        altPos[to] = pos[i];
      }
      [bits, alt] = [alt, bits];
      [pos, altPos] = [altPos, pos];
    }
    return pos;
  }

  /** Running requests to preempt so that the greedy prefix fits memory and the sequence cap. */
  #victims(view: EngineView, running: RequestView[], waiting: RequestView[]): RequestView[] {
    const o = this.#o;
    const rk = this.#rk, wk = this.#wk;
    let tokens = o.tokenBudget, seqs = o.maxNumSeqs, need = 0;
    let i = 0, j = 0, newcomers = 0;
    while (i < running.length || j < waiting.length) {
      // Merge the two sorted lists; running requests win ties.
      const takeRunning = j >= waiting.length || (i < running.length && rk[i] <= wk[j]);
      const r = takeRunning ? running[i] : waiting[j];
      const todo = takeRunning
        ? r.numTokens - r.numComputedTokens
        : r.numTokens - view.cachedPrefixTokens(r);
      const n = Math.min(todo, tokens);
      if (n <= 0 || seqs <= 0) break;
      tokens -= n;
      seqs--;
      if (takeRunning) {
        need += view.blocksNeeded(r, n);
        i++;
      } else {
        // A new request is counted with its whole prompt, as the original does.
        need += view.blocksNeeded(r, todo);
        newcomers++;
        j++;
      }
    }
    if (newcomers === 0) return [];
    let shortBlocks = need - view.kv.freeBlocks + Math.ceil(o.watermark * view.kv.totalBlocks);
    let shortSeqs = running.length + newcomers - o.maxNumSeqs;
    const victims: RequestView[] = [];
    // Running requests from index i on are outside the prefix: lowest rank goes first.
    for (let k = running.length - 1; k >= i && (shortBlocks > 0 || shortSeqs > 0); k--) {
      victims.push(running[k]);
      shortBlocks -= view.blocksFreedBy(running[k]);
      shortSeqs--;
    }
    // When preempting everything outside the prefix cannot make room, throw no work away.
    return shortBlocks > 0 ? [] : victims;
  }
}
