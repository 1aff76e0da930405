/**
 * Decoding ahead: the bookkeeping that lets the webgpu executor answer several engine
 * steps from one GPU submission.
 *
 * In Deno every read-back costs about 10 ms (deno-webgpu-wasm-notes, 0.1), which caps a
 * lone stream near 85 tokens/s whatever the GPU. So when a pass samples a greedy
 * sequence, the runner goes on for a few sub-steps in the same submission, feeding each
 * such sequence its own argmax on the device and writing the KV of those positions, and
 * reads all those tokens back at once. The executor keeps them here; while the engine's
 * next steps ask exactly for that continuation (same position, same fed token, same
 * blocks), it answers from here with no GPU work. Anything else (another token, a new
 * block table after a preemption, a sequence that was not asked for a while) drops the
 * entry and the sequence runs for real, so the tokens are always those of plain decoding.
 *
 * Positions past the blocks the engine has allocated are written to scratch blocks
 * (pool ids from `numBlocks` on, owned here); when the engine allocates the real block,
 * the scratch block is copied into it before any pass can read it.
 *
 * The executor keeps its greedy sequences in one group that plans together: a sequence
 * that joins runs step by step until the group's chains end, then joins the next plan.
 * The depth adapts to how much of each plan gets used (a stop token, a preemption) and to
 * what a sub-step costs against the read-back it saves.
 *
 * @module
 */

/** One sequence's tokens decoded ahead. */
interface Entry {
  /** Position of `inputs[0]`. */
  start: number;
  /** `inputs[k]` is fed at position `start + k`; `outputs[k]` is sampled after it. */
  inputs: number[];
  outputs: number[];
  /** Served so far. */
  at: number;
  /** Relay prefix length the tokens were computed with. */
  prefixLen: number;
  /** Block index (past the prefix) -> pool block holding positions written ahead. */
  pool: Map<number, number>;
  /** Block index -> scratch block holding positions written ahead. */
  scratch: Map<number, number>;
  /** Engine step of the last use. */
  lastStep: number;
}

/** What the executor knows of a batch sequence when asking for a token. */
export interface AheadQuery {
  /** Request id. */
  id: string;
  /** Fed tokens. */
  tokens: ArrayLike<number>;
  /** Position of the first fed token. */
  startPos: number;
  /** The engine's block table (positions after the prefix). */
  blockTable: readonly number[];
  /** Relay prefix length (0: none). */
  prefixLen: number;
}

/** A sequence to decode ahead in the next pass. */
export interface AheadCandidate extends AheadQuery {
  /** Tokens it may still produce after this step's (its cap). */
  remaining: number;
}

/** The plan of one pass's decoding ahead. */
export interface AheadPlan {
  /** Sub-steps after the pass. */
  steps: number;
  /** The candidates' block tables through the last position written ahead. */
  tables: number[][];
}

/** Steps after which an entry that was not asked for is dropped. */
const STALE_STEPS = 16;

/** Tokens decoded ahead, per sequence, and the scratch blocks that hold their KV. */
export class AheadCache {
  readonly #depth: number;
  readonly #maxSeqs: number;
  readonly #blockSize: number;
  readonly #maxPositions: number;
  readonly #entries = new Map<string, Entry>();
  readonly #freeScratch: number[];
  #copyFrom: number[] = [];
  #copyTo: number[] = [];
  /** Sub-steps of the last plan, and the most tokens any of its sequences used. */
  #planned = 0;
  #used = 0;
  /** Running estimate of the useful depth (see {@link depth}). */
  #estimate: number;
  /** How far past the depth seen used the next plans reach (see {@link passCost}). */
  #reach = 2;
  /** Running estimate of a sub-step's seconds (-1: none yet), and of a read-back's. */
  #subStep = -1;
  #readback = 0;
  /** Tokens served from the cache so far. */
  hits = 0;

  /**
   * `depth` tokens ahead at most, for at most `maxSeqs` sequences per pass; scratch
   * blocks are ids `firstScratch .. firstScratch + scratchBlocks(...) - 1`.
   */
  constructor(
    depth: number,
    maxSeqs: number,
    blockSize: number,
    maxPositions: number,
    firstScratch: number,
  ) {
    this.#depth = depth;
    this.#maxSeqs = maxSeqs;
    this.#blockSize = blockSize;
    this.#maxPositions = maxPositions;
    this.#estimate = depth;
    const n = AheadCache.scratchBlocks(depth, maxSeqs, blockSize);
    this.#freeScratch = Array.from({ length: n }, (_, i) => firstScratch + n - 1 - i);
  }

  /**
   * Sub-steps the next plan will take at most: the configured depth at first, then what
   * plans are seen to be used before their chains end (a stop token or a preemption ends
   * one early), times a reach between 1 and 2 (see {@link passCost}), so that chains that
   * end early waste little. 0 while plans go unused; then one is tried again every dozen
   * or so steps.
   */
  get depth(): number {
    // Where a sub-step costs more than a fraction of the read-back it saves, the gain of
    // going deep is small and the waste when plans are cut short is large.
    const cap = this.#subStep > 0 ? Math.ceil((4 * this.#readback) / this.#subStep) : Infinity;
    return Math.min(this.#depth, cap, Math.round(this.#estimate));
  }

  /** Fold the last plan's use into the estimate. */
  #learn(): void {
    if (this.#planned === 0) return;
    const seen = this.#reach * Math.min(this.#used, this.#planned);
    this.#estimate = 0.5 * this.#estimate + 0.5 * seen;
    this.#planned = 0;
    this.#used = 0;
  }

  /**
   * What a read-back and one sub-step cost here, in seconds. A sub-step costs little
   * against the read-back it saves on a GPU (reach 2: plans look twice as far as they are
   * used), much on a software adapter (reach near 1: no further than they are used; and
   * the depth is capped near 4 read-backs' worth of sub-steps).
   */
  passCost(readback: number, subStep: number): void {
    if (!(readback > 0 && subStep >= 0)) return;
    this.#readback = readback;
    this.#subStep = this.#subStep < 0 ? subStep : 0.7 * this.#subStep + 0.3 * subStep;
    this.#reach = 1 + readback / (readback + this.#subStep);
  }

  /** Scratch blocks needed for `depth` tokens ahead of `maxSeqs` sequences. */
  static scratchBlocks(depth: number, maxSeqs: number, blockSize: number): number {
    // The engine's table covers every position already fed, so `depth` positions after
    // them need at most ceil(depth / blockSize) more blocks.
    return depth > 0 ? maxSeqs * Math.ceil(depth / blockSize) : 0;
  }

  /** Whether a sequence has tokens decoded ahead (it belongs to the current plan). */
  has(id: string): boolean {
    return this.#entries.has(id);
  }

  /** Whether `q` continues a sequence decoded ahead, so {@link serve} would answer it. */
  covers(q: AheadQuery): boolean {
    const e = this.#entries.get(q.id);
    if (!e) return false;
    const k = e.at;
    if (
      q.tokens.length !== 1 || q.startPos !== e.start + k || q.tokens[0] !== e.inputs[k] ||
      q.prefixLen !== e.prefixLen
    ) return false;
    const bi = Math.floor((q.startPos - q.prefixLen) / this.#blockSize);
    const real = q.blockTable[bi];
    if (real === undefined) return false;
    const pool = e.pool.get(bi);
    return pool !== undefined ? pool === real : e.scratch.has(bi);
  }

  /**
   * The token for `q` if it continues a sequence decoded ahead, else undefined (and its
   * entry is dropped). A hit may queue a scratch-to-pool copy ({@link takeCopies}).
   */
  serve(q: AheadQuery, step: number): number | undefined {
    if (!this.covers(q)) {
      this.drop(q.id);
      return undefined;
    }
    const e = this.#entries.get(q.id)!;
    const bi = Math.floor((q.startPos - q.prefixLen) / this.#blockSize);
    const scratch = e.scratch.get(bi);
    if (scratch !== undefined) {
      // The engine has allocated this block: the KV written ahead moves into it.
      const real = q.blockTable[bi];
      this.#copyFrom.push(scratch);
      this.#copyTo.push(real);
      e.scratch.delete(bi);
      this.#freeScratch.push(scratch);
      e.pool.set(bi, real);
    }
    const k = e.at++;
    e.lastStep = step;
    this.hits++;
    this.#used = Math.max(this.#used, e.at);
    if (e.at === e.inputs.length) this.drop(q.id);
    return e.outputs[k];
  }

  /** Scratch-to-pool block copies to make before the next pass. */
  takeCopies(): { from: number[]; to: number[] } {
    const out = { from: this.#copyFrom, to: this.#copyTo };
    this.#copyFrom = [];
    this.#copyTo = [];
    return out;
  }

  /** Forget a sequence's tokens ahead (its scratch blocks return). */
  drop(id: string): void {
    const e = this.#entries.get(id);
    if (!e) return;
    for (const b of e.scratch.values()) this.#freeScratch.push(b);
    this.#entries.delete(id);
  }

  /** Drop entries not asked for in the last few steps (finished or set-aside sequences). */
  sweep(step: number): void {
    for (const [id, e] of this.#entries) if (step - e.lastStep > STALE_STEPS) this.drop(id);
  }

  /**
   * How many sub-steps the candidates (all of them) go ahead in the coming pass, and with
   * what tables (scratch blocks taken where the engine's tables end). Undefined when they
   * do not (too many, nothing left to produce, no room). Entries of other sequences are
   * dropped if their scratch blocks are needed.
   */
  plan(candidates: readonly AheadCandidate[], step: number): AheadPlan | undefined {
    if (this.#depth === 0 || candidates.length === 0 || candidates.length > this.#maxSeqs) {
      return undefined;
    }
    this.#learn();
    const depth = this.depth;
    if (depth === 0) {
      // Plans go unused (chains end at once) or a sub-step costs several read-backs: try
      // one again now and then.
      this.#estimate += 0.02;
      return undefined;
    }
    let steps = 0;
    for (const c of candidates) steps = Math.max(steps, Math.min(depth, c.remaining));
    for (const c of candidates) {
      const next = c.startPos + c.tokens.length;
      steps = Math.min(steps, this.#maxPositions - next);
    }
    if (steps <= 0) return undefined;
    for (const c of candidates) this.drop(c.id);
    const need = candidates.map((c) => this.#blocksPast(c, steps));
    const total = need.reduce((a, b) => a + b, 0);
    if (total > this.#freeScratch.length) {
      for (const id of [...this.#entries.keys()]) this.drop(id);
    }
    if (total > this.#freeScratch.length) return undefined;
    const tables = candidates.map((c, i) => {
      const table = c.blockTable.slice();
      for (let j = 0; j < need[i]; j++) table.push(this.#freeScratch.pop()!);
      return table;
    });
    for (const [i, c] of candidates.entries()) {
      const next = c.startPos + c.tokens.length;
      const pool = new Map<number, number>();
      const scratch = new Map<number, number>();
      const first = Math.floor((next - c.prefixLen) / this.#blockSize);
      const last = Math.floor((next + steps - 1 - c.prefixLen) / this.#blockSize);
      for (let bi = first; bi <= last; bi++) {
        if (bi < c.blockTable.length) pool.set(bi, c.blockTable[bi]);
        else scratch.set(bi, tables[i][bi]);
      }
      this.#entries.set(c.id, {
        start: next,
        inputs: [],
        outputs: [],
        at: 0,
        prefixLen: c.prefixLen,
        pool,
        scratch,
        lastStep: step,
      });
    }
    this.#planned = steps;
    return { steps, tables };
  }

  /**
   * Record a pass's results: `first[i]` sampled in the pass for candidate `i`, and
   * `ahead[(j - 1) * n + i]` after sub-step `j`.
   */
  record(ids: readonly string[], first: ArrayLike<number>, ahead: ArrayLike<number>): void {
    const n = ids.length;
    const steps = n > 0 ? ahead.length / n : 0;
    ids.forEach((id, i) => {
      const e = this.#entries.get(id);
      if (!e) return;
      let prev = first[i];
      for (let j = 1; j <= steps; j++) {
        e.inputs.push(prev);
        prev = ahead[(j - 1) * n + i];
        e.outputs.push(prev);
      }
    });
  }

  /** Blocks past the engine's table that positions `next .. next + steps - 1` need. */
  #blocksPast(c: AheadCandidate, steps: number): number {
    const next = c.startPos + c.tokens.length;
    const own = next + steps - c.prefixLen;
    return Math.max(0, Math.ceil(own / this.#blockSize) - c.blockTable.length);
  }
}
