/**
 * The engine's record of one request: its tokens, its KV blocks, its progress, and the
 * incremental detokenisation that feeds streams and stop strings. Policies see it only
 * through the read-only {@link RequestView} it implements.
 *
 * @module
 */

import { blockHash, ROOT_HASH } from "./block_pool.ts";
import type {
  BatchSequence,
  FinishReason,
  RequestEvent,
  RequestStatus,
  RequestView,
  SamplingParams,
} from "./types.ts";
import type { Tokenizer } from "./model/types.ts";

/** Receives a request's events. */
export type RequestListener = (event: RequestEvent) => void;

/** Engine-internal request state. */
export class Request implements RequestView {
  /** Unique id. */
  readonly id: string;
  /** Arrival time on the engine clock. */
  readonly arrivalTime: number;
  /** Caller-given priority. */
  readonly priority: number;
  /** Program id for multi-turn policies. */
  readonly programId: string | undefined;
  /** Prompt token ids. */
  readonly promptTokens: readonly number[];
  /** Generated token ids. */
  readonly outputTokens: number[] = [];
  /** Sampling and stopping. */
  readonly sampling: SamplingParams;
  /** Hidden facts for simulation. */
  readonly hidden: { outputLength: number } | undefined;
  /** Event sink. */
  readonly listener: RequestListener;
  /** Physical KV blocks, in position order. */
  blockTable: number[] = [];
  /** Tokens whose KV is in the cache. */
  numComputedTokens = 0;
  /** Where it is. */
  status: RequestStatus = "waiting";
  /** Recompute preemptions so far. */
  numPreemptions = 0;
  /** Step at which it last ran. */
  lastScheduledStep = -1;
  /** Clock when it first ran. */
  firstScheduledTime = -1;
  /** Prompt tokens served from the prefix cache at its first start. */
  cachedTokens = -1;
  /** Hashes of full blocks of all tokens, filled lazily. */
  readonly blockHashes: number[] = [];
  /** Blocks of `blockTable` already registered in the prefix cache. */
  registeredBlocks = 0;
  /**
   * Positions before this one live outside the request's blocks: in a shared prompt KV
   * (RelayAttention). Block `k` holds positions `base + k * blockSize ..`. 0 otherwise.
   */
  base = 0;
  /** Hash the first block chains on (differs per shared prompt, so blocks never mix). */
  hashRoot = ROOT_HASH;
  /** Prefix-hit probe cached for one step: [step, hit blocks, hit blocks that are free]. */
  hitProbe: [number, number, number] = [-1, 0, 0];

  /** This request's entry in the executor batch, reused step after step. */
  #seq: BatchSequence | undefined;

  // Incremental detokenisation: text of tokens [prefixOffset, readOffset) was emitted.
  #prefixOffset = 0;
  #readOffset = 0;
  #held = "";
  #text = "";

  /** Build from validated fields. */
  constructor(fields: {
    id: string;
    arrivalTime: number;
    priority: number;
    programId?: string;
    promptTokens: number[];
    sampling: SamplingParams;
    hidden?: { outputLength: number };
    listener: RequestListener;
  }) {
    this.id = fields.id;
    this.arrivalTime = fields.arrivalTime;
    this.priority = fields.priority;
    this.programId = fields.programId;
    this.promptTokens = fields.promptTokens;
    this.sampling = fields.sampling;
    this.hidden = fields.hidden;
    this.listener = fields.listener;
  }

  /** Prompt plus output length. */
  get numTokens(): number {
    return this.promptTokens.length + this.outputTokens.length;
  }

  /** KV blocks held. */
  get numBlocks(): number {
    return this.blockTable.length;
  }

  /** The cap on generated tokens. */
  get maxTokens(): number {
    return this.sampling.maxTokens;
  }

  /**
   * The request's batch entry for computing `n` tokens from position `start`. The object
   * (and, for a decode, its token array) is reused from step to step, so an executor must
   * not keep it past `run`.
   */
  batchSequence(start: number, n: number): BatchSequence {
    const s = this.#seq ??= {
      id: this.id,
      tokens: [0],
      startPos: 0,
      blockTable: this.blockTable,
      sample: false,
      sampling: this.sampling,
      outputIndex: 0,
      hidden: this.hidden,
    };
    if (n === 1) {
      if (s.tokens.length !== 1) s.tokens = [0];
      s.tokens[0] = this.tokenAt(start);
    } else s.tokens = this.tokens(start, start + n);
    s.startPos = start;
    s.blockTable = this.blockTable;
    s.sample = start + n === this.numTokens;
    s.outputIndex = this.outputTokens.length;
    if (this.base > 0) s.prefixed = true;
    else if (s.prefixed) delete s.prefixed;
    return s;
  }

  /** Token at position `i` of prompt-then-output. */
  tokenAt(i: number): number {
    const p = this.promptTokens.length;
    return i < p ? this.promptTokens[i] : this.outputTokens[i - p];
  }

  /** Tokens at positions `[from, to)`. */
  tokens(from: number, to: number): number[] {
    const out = new Array<number>(to - from);
    for (let i = from; i < to; i++) out[i - from] = this.tokenAt(i);
    return out;
  }

  /**
   * Where the tokens of full block `i` can be read: the prompt array itself when the block
   * lies inside the prompt (no copy), else a fresh array. Returns `[array, offset]`.
   */
  blockTokens(i: number, blockSize: number): [readonly number[], number] {
    const from = this.base + i * blockSize;
    if (from + blockSize <= this.promptTokens.length) return [this.promptTokens, from];
    return [this.tokens(from, from + blockSize), 0];
  }

  /**
   * Place the request's blocks after a shared prompt of `base` tokens whose hash is `root`
   * (or, with 0 and ROOT_HASH, at the start). Only while it holds no blocks.
   */
  setBase(base: number, root: number): void {
    if (base === this.base && root === this.hashRoot) return;
    if (this.blockTable.length > 0) {
      throw new Error(`request ${this.id} holds blocks; its base cannot move`);
    }
    this.base = base;
    this.hashRoot = root;
    this.blockHashes.length = 0;
  }

  /** Hash of full block `i` (positions `base + i * blockSize ..`), computed on first use. */
  hashOfBlock(i: number, blockSize: number): number {
    while (this.blockHashes.length <= i) {
      const k = this.blockHashes.length;
      const parent = k === 0 ? this.hashRoot : this.blockHashes[k - 1];
      const [toks, from] = this.blockTokens(k, blockSize);
      this.blockHashes.push(blockHash(parent, toks, from, from + blockSize));
    }
    return this.blockHashes[i];
  }

  /** Parent hash of full block `i`. */
  parentHashOfBlock(i: number, blockSize: number): number {
    return i === 0 ? this.hashRoot : this.hashOfBlock(i - 1, blockSize);
  }

  /**
   * Text newly completed by the latest output token, with the tail that could still grow
   * into a stop string held back. Returns the text to emit and, when a stop string matched,
   * true (the text is then cut before the match).
   */
  detokenize(tokenizer: Tokenizer, skipLast: boolean): { text: string; stopped: boolean } {
    const out = this.outputTokens;
    const end = skipLast ? out.length - 1 : out.length;
    const before = tokenizer.decode(out.slice(this.#prefixOffset, this.#readOffset));
    const after = tokenizer.decode(out.slice(this.#prefixOffset, end));
    let fresh = "";
    if (after.length > before.length && !after.endsWith("\uFFFD")) {
      fresh = after.slice(before.length);
      this.#prefixOffset = this.#readOffset;
      this.#readOffset = end;
    }
    const stops = this.sampling.stop;
    if (stops.length === 0) return { text: fresh, stopped: false };
    // Stop strings: search the held tail plus the fresh text; emit only what cannot be
    // the start of a match.
    const pending = this.#held + fresh;
    const searchFrom = Math.max(0, this.#text.length - maxLength(stops));
    const whole = this.#text + pending;
    let cut = -1;
    for (const s of stops) {
      const at = whole.indexOf(s, searchFrom);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      const emit = whole.slice(this.#text.length, Math.max(cut, this.#text.length));
      this.#text += emit;
      this.#held = "";
      return { text: emit, stopped: true };
    }
    const keep = Math.min(pending.length, maxLength(stops) - 1);
    const emit = pending.slice(0, pending.length - keep);
    this.#held = pending.slice(pending.length - keep);
    this.#text += emit;
    return { text: emit, stopped: false };
  }

  /** Text held back for stop-string matching, released when the request ends. */
  flushHeld(): string {
    const t = this.#held;
    this.#held = "";
    this.#text += t;
    return t;
  }

  /** Emit the finish event. */
  finish(reason: FinishReason, now: number, text: string, error?: string): void {
    this.status = "finished";
    this.listener({
      type: "finish",
      id: this.id,
      reason,
      error,
      text,
      usage: {
        promptTokens: this.promptTokens.length,
        completionTokens: this.outputTokens.length,
        cachedTokens: Math.max(0, this.cachedTokens),
      },
      time: now,
      arrivalTime: this.arrivalTime,
      firstScheduledTime: this.firstScheduledTime,
      numPreemptions: this.numPreemptions,
    });
  }
}

function maxLength(strings: readonly string[]): number {
  let m = 0;
  for (const s of strings) m = Math.max(m, s.length);
  return m;
}
