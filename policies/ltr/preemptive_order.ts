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

/**
 * Fills `out[i]` with the key of `list[i]` (lower first), for queue `q` (0: running,
 * 1: waiting). It may also fill `prev[i]` with the index `list[i]` had in the array of
 * the previous call for the same queue (-1: not there), and then returns true: the order
 * is then updated from the previous one instead of sorted anew.
 */
export type KeyFiller = (
  list: readonly RequestView[],
  q: 0 | 1,
  out: Float64Array<ArrayBuffer>,
  prev: Int32Array<ArrayBuffer>,
) => boolean | void;

interface SortedQueue {
  /** The array last sorted, its length, keys in its own order, and the sorted result. */
  list: readonly RequestView[] | undefined;
  n: number;
  keys: Float64Array<ArrayBuffer>;
  prev: Float64Array<ArrayBuffer>;
  sortedKeys: Float64Array<ArrayBuffer>;
  out: RequestView[];
  /** Sorted order as indices into the array, this call's and the previous call's. */
  perm: Uint32Array<ArrayBuffer>;
  prevPerm: Uint32Array<ArrayBuffer>;
  /** Index in the previous array of each request, from the key filler. */
  was: Int32Array<ArrayBuffer>;
}

const sortedQueue = (): SortedQueue => ({
  list: undefined,
  n: 0,
  keys: new Float64Array(256),
  prev: new Float64Array(256),
  sortedKeys: new Float64Array(256),
  out: [],
  perm: new Uint32Array(256),
  prevPerm: new Uint32Array(256),
  was: new Int32Array(256),
});

/**
 * Sorts requests by key and picks preemption victims; reuses its buffers between steps,
 * and its previous order of a queue when the engine hands the same frozen array with the
 * same keys.
 */
export class PreemptiveOrder {
  readonly #o: PreemptiveOrderOptions;
  readonly #q: [SortedQueue, SortedQueue] = [sortedQueue(), sortedQueue()];
  #survivor = new Int32Array(256);
  #fresh = new Uint32Array(256);
  #bits: [Uint32Array, Uint32Array] = [new Uint32Array(256), new Uint32Array(256)];
  #pos: [Uint32Array, Uint32Array] = [new Uint32Array(256), new Uint32Array(256)];
  readonly #count = new Uint32Array(256);
  readonly #victimList: RequestView[] = [];

  /** Budgets as the batcher uses them. */
  constructor(options: PreemptiveOrderOptions) {
    this.#o = options;
  }

  /** Order both queues by `keyOf` (lower first; ties keep the engine's order) and pick victims. */
  order(view: EngineView, keyOf: (req: RequestView) => number): SchedulerOrder {
    return this.orderBy(view, (list, _q, out) => {
      for (let i = 0; i < list.length; i++) out[i] = keyOf(list[i]);
      return false;
    });
  }

  /** As {@link order}, with the keys of a whole queue filled at once. */
  orderBy(view: EngineView, fill: KeyFiller): SchedulerOrder {
    const running = this.#sort(view.running, 0, fill);
    const waiting = this.#sort(view.waiting, 1, fill);
    const preempt = this.#victims(view, running, waiting);
    return preempt.length > 0 ? { running, waiting, preempt: preempt.slice() } : {
      running,
      waiting,
    };
  }

  // The order's arrays are reused from step to step (the engine reads them within a step).
  #sort(list: readonly RequestView[], q: 0 | 1, fill: KeyFiller): RequestView[] {
    const s = this.#q[q];
    const n = list.length;
    if (s.keys.length < n) {
      const size = Math.max(n, s.keys.length * 2);
      const keep = s.keys;
      s.keys = new Float64Array(size);
      s.keys.set(keep);
      s.prev = new Float64Array(size);
      s.sortedKeys = new Float64Array(size);
      const perm = s.perm;
      s.perm = new Uint32Array(size);
      s.perm.set(perm);
      s.prevPerm = new Uint32Array(size);
      s.was = new Int32Array(size);
    }
    // The keys and order of the previous call stay in `prev` and `prevPerm`.
    [s.keys, s.prev] = [s.prev, s.keys];
    [s.perm, s.prevPerm] = [s.prevPerm, s.perm];
    const keys = s.keys;
    const tracked = fill(list, q, keys, s.was) === true;
    const prevN = s.n;
    s.n = n;
    // Same frozen array and the same keys: the previous result still holds.
    if (s.list === list && Object.isFrozen(list)) {
      const prev = s.prev;
      let same = true;
      for (let i = 0; i < n; i++) {
        if (keys[i] !== prev[i]) {
          same = false;
          break;
        }
      }
      if (same) {
        s.perm.set(s.prevPerm.subarray(0, n));
        return s.out;
      }
    }
    const hadList = s.list !== undefined;
    s.list = list;
    let sorted = true;
    for (let i = 1; i < n && sorted; i++) if (keys[i] < keys[i - 1]) sorted = false;
    const perm = s.perm;
    if (sorted) {
      for (let i = 0; i < n; i++) perm[i] = i;
    } else if (!(tracked && hadList && this.#update(s, prevN))) {
      perm.set(this.#radix(keys, n).subarray(0, n));
    }
    const out = s.out;
    const sk = s.sortedKeys;
    out.length = n;
    for (let i = 0; i < n; i++) {
      const k = perm[i];
      out[i] = list[k];
      sk[i] = keys[k];
    }
    return out;
  }

  /**
   * The new order from the previous one when few requests are new or changed key: the
   * others keep their relative order (the engine's queues keep the relative order of the
   * requests that stay, and the sort is stable), so they are read off the previous order
   * and merged with the few, sorted apart. False (nothing written) when that does not
   * apply; the caller then sorts from scratch.
   */
  #update(s: SortedQueue, prevN: number): boolean {
    const n = s.n, keys = s.keys, prevKeys = s.prev, was = s.was;
    if (this.#survivor.length < Math.max(n, prevN)) {
      const size = Math.max(n, prevN, this.#survivor.length * 2);
      this.#survivor = new Int32Array(size);
      this.#fresh = new Uint32Array(size);
    }
    // newIndex[old index] for requests that stayed with the same key; -1 otherwise.
    const newIndex = this.#survivor.subarray(0, prevN);
    newIndex.fill(-1);
    const fresh = this.#fresh;
    let nf = 0;
    const limit = (n >> 3) + 8;
    for (let i = 0; i < n; i++) {
      const k = keys[i];
      if (k !== k) return false; // NaN has no order
      const o = was[i];
      if (o >= 0 && o < prevN && prevKeys[o] === k && newIndex[o] < 0) newIndex[o] = i;
      else {
        if (nf >= limit) return false;
        fresh[nf++] = i;
      }
    }
    // Sort the few by (float32 key, index): insertion sort, they come in index order.
    for (let a = 1; a < nf; a++) {
      const x = fresh[a], kx = Math.fround(keys[x]);
      let b = a - 1;
      while (b >= 0 && Math.fround(keys[fresh[b]]) > kx) {
        fresh[b + 1] = fresh[b];
        b--;
      }
      fresh[b + 1] = x;
    }
    // Merge the stayers, in their previous order, with the few.
    const prevPerm = s.prevPerm, perm = s.perm;
    let w = 0, f = 0, last = -1;
    let lastKey = -Infinity;
    for (let r = 0; r < prevN; r++) {
      const i = newIndex[prevPerm[r]];
      if (i < 0) continue;
      const k = Math.fround(keys[i]);
      // The stayers must come out sorted by (key, index); if not, sort from scratch.
      if (k < lastKey || (k === lastKey && i < last)) return false;
      lastKey = k;
      last = i;
      while (f < nf) {
        const j = fresh[f], kj = Math.fround(keys[j]);
        if (kj < k || (kj === k && j < i)) {
          perm[w++] = j;
          f++;
        } else break;
      }
      perm[w++] = i;
    }
    while (f < nf) perm[w++] = fresh[f++];
    return w === n;
  }

  /**
   * Stable LSD radix sort of the keys' order-preserving 32-bit images, a byte per pass:
   * linear time, no comparator calls. Returns the positions in sorted order.
   */
  #radix(keys: Float64Array, n: number): Uint32Array {
    if (this.#bits[0].length < n) {
      const size = Math.max(n, this.#bits[0].length * 2);
      this.#bits = [new Uint32Array(size), new Uint32Array(size)];
      this.#pos = [new Uint32Array(size), new Uint32Array(size)];
    }
    let [bits, alt] = this.#bits;
    let [pos, altPos] = this.#pos;
    const count = this.#count;
    for (let i = 0; i < n; i++) {
      bits[i] = orderBits(keys[i]);
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
    const rk = this.#q[0].sortedKeys, wk = this.#q[1].sortedKeys;
    const victims = this.#victimList;
    victims.length = 0;
    // The merge below takes running requests while their key is at most the best waiting
    // key: when at least maxNumSeqs of them do, no newcomer enters the prefix.
    if (waiting.length === 0) return victims;
    if (running.length >= o.maxNumSeqs) {
      const head = wk[0];
      let lo = 0, hi = running.length; // first running index with rk > head
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (rk[mid] <= head) lo = mid + 1;
        else hi = mid;
      }
      if (lo >= o.maxNumSeqs) return victims;
    }
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
    if (newcomers === 0) return victims;
    let shortBlocks = need - view.kv.freeBlocks + Math.ceil(o.watermark * view.kv.totalBlocks);
    let shortSeqs = running.length + newcomers - o.maxNumSeqs;
    // Running requests from index i on are outside the prefix: lowest rank goes first.
    for (let k = running.length - 1; k >= i && (shortBlocks > 0 || shortSeqs > 0); k--) {
      victims.push(running[k]);
      shortBlocks -= view.blocksFreedBy(running[k]);
      shortSeqs--;
    }
    // When preempting everything outside the prefix cannot make room, throw no work away.
    if (shortBlocks > 0) victims.length = 0;
    return victims;
  }
}
