/**
 * The engine's record of one request: its tokens, its KV blocks, its progress, and the
 * incremental detokenisation that feeds streams and stop strings. Policies see it only
 * through the read-only {@link RequestView} it implements.
 *
 * @module
 */

import { type BlockChain, blockHash, ROOT_HASH } from "./block_pool.ts";
import type {
  BatchSequence,
  FinishReason,
  RequestEvent,
  RequestStatus,
  RequestView,
  SamplingParams,
  TokenIds,
  TurnInfo,
} from "./types.ts";
import type { Tokenizer } from "./model/types.ts";

/** Receives a request's events. */
export type RequestListener = (event: RequestEvent) => void;

/** Engine-internal request state. */
export class Request implements RequestView, BlockChain {
  /** Unique id. */
  readonly id: string;
  /** Arrival time on the engine clock. */
  readonly arrivalTime: number;
  /** Caller-given priority. */
  readonly priority: number;
  /** Program id for multi-turn policies. */
  readonly programId: string | undefined;
  /** What its agent said of this turn. */
  readonly turn: Readonly<TurnInfo> | undefined;
  /** Prompt token ids. */
  readonly promptTokens: TokenIds;
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
  /** Preemptions so far (recompute or swap). */
  numPreemptions = 0;
  /** Step at which it last ran. */
  lastScheduledStep = -1;
  /** Clock when it first ran. */
  firstScheduledTime = -1;
  /** Clock of the first output token, or -1. */
  firstTokenTime = -1;
  /** Clock of the latest output token, or -1. */
  lastTokenTime = -1;
  /** Longest gap between consecutive output tokens, seconds. */
  maxTokenGap = 0;
  /** Whether the listener gets token events. */
  readonly stream: boolean;
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
  /** Host swap slots holding its KV while it is swapped out (empty otherwise). */
  swapSlots: number[] = [];
  /** Tokens whose KV waits in those slots. */
  swappedTokens = 0;
  /** Which plan builder has it in its plan, and how (`PlanBuilder`'s bookkeeping). */
  builderMark = 0;
  /** Which plan check saw it last, and how (the engine's bookkeeping). */
  planMark = 0;
  /** The block pool's bookkeeping for its blocks' prefix registration. */
  cacheGroup: object | undefined = undefined;
  /** Step of the cached prefix-hit probe (-1: none). */
  probeStep = -1;
  /** Prefix-cache hit blocks found by the probe. */
  probeHits = 0;
  /** Of those, blocks no request holds now. */
  probeFreeHits = 0;
  /** Blocks after those that the host KV cache holds (see {@link probeStep}). */
  probeHostHits = 0;
  /** The draft tokens fed this step, if any (speculative decoding). */
  drafts: readonly number[] | undefined = undefined;

  /** This request's entry in the executor batch, reused step after step. */
  #seq: BatchSequence | undefined;
  /** A decode's one token, the batch entry's `tokens` (reused). */
  readonly #one: number[] = [0];
  /** Tokens of a block that reaches past the prompt, copied here for hashing. */
  #blockScratch: number[] = [];

  // Incremental detokenisation: text of tokens [prefixOffset, readOffset) was emitted.
  #prefixOffset = 0;
  #readOffset = 0;
  #held = "";
  #text = "";
  /** Text of a request that does not stream, delivered with the finish event. */
  #unsent = "";

  /** Build from validated fields. */
  constructor(fields: {
    id: string;
    arrivalTime: number;
    priority: number;
    programId?: string;
    turn?: TurnInfo;
    promptTokens: TokenIds;
    sampling: SamplingParams;
    hidden?: { outputLength: number };
    listener: RequestListener;
    stream?: boolean;
  }) {
    this.id = fields.id;
    this.arrivalTime = fields.arrivalTime;
    this.priority = fields.priority;
    this.programId = fields.programId;
    this.turn = fields.turn;
    this.promptTokens = fields.promptTokens;
    this.numTokens = fields.promptTokens.length;
    this.sampling = fields.sampling;
    this.hidden = fields.hidden;
    this.listener = fields.listener;
    this.stream = fields.stream ?? true;
  }

  /** Prompt plus output length (kept in step by {@link appendToken}, read per step often). */
  numTokens: number;

  /** Append a generated token. */
  appendToken(token: number): void {
    this.outputTokens.push(token);
    this.numTokens++;
  }

  /** KV blocks held. */
  get numBlocks(): number {
    return this.blockTable.length;
  }

  /** Blocks that hold its computed tokens plus `n` more. */
  blocksFor(n: number, blockSize: number): number {
    return Math.ceil((this.numComputedTokens + n - this.base) / blockSize);
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
      const p = this.promptTokens.length;
      this.#one[0] = start < p ? this.promptTokens[start] : this.outputTokens[start - p];
      s.tokens = this.#one;
    } else s.tokens = this.tokens(start, start + n);
    s.startPos = start;
    s.blockTable = this.blockTable;
    s.sample = start + n === this.numTokens;
    s.outputIndex = this.outputTokens.length;
    if (this.base > 0) s.prefixed = true;
    else if (s.prefixed) delete s.prefixed;
    if (s.drafts !== undefined) delete s.drafts;
    this.drafts = undefined;
    return s;
  }

  /**
   * Feed `drafts` after this step's decode token (speculative decoding): the sequence of
   * the latest {@link batchSequence} call, which must be a one-token decode.
   */
  draft(drafts: readonly number[]): void {
    const s = this.#seq!;
    s.tokens = [s.tokens[0], ...drafts];
    s.drafts = drafts.length;
    this.drafts = drafts;
  }

  /** Token at position `i` of prompt-then-output. */
  tokenAt(i: number): number {
    const p = this.promptTokens.length;
    return i < p ? this.promptTokens[i] : this.outputTokens[i - p];
  }

  /** Tokens at positions `[from, to)`: a view of the prompt when they lie inside it. */
  tokens(from: number, to: number): TokenIds {
    const p = this.promptTokens;
    if (to <= p.length) return p instanceof Int32Array ? p.subarray(from, to) : p.slice(from, to);
    const out = new Array<number>(to - from);
    for (let i = from; i < to; i++) out[i - from] = this.tokenAt(i);
    return out;
  }

  /**
   * The array holding full block `i`'s tokens from {@link blockOffset}: the prompt itself
   * when the block lies inside it (no copy), else a scratch copy that the next call reuses.
   */
  blockArray(i: number, blockSize: number): TokenIds {
    const from = this.base + i * blockSize;
    if (from + blockSize <= this.promptTokens.length) return this.promptTokens;
    const out = this.#blockScratch;
    out.length = blockSize;
    for (let j = 0; j < blockSize; j++) out[j] = this.tokenAt(from + j);
    return out;
  }

  /** Where full block `i` starts in {@link blockArray}'s array. */
  blockOffset(i: number, blockSize: number): number {
    const from = this.base + i * blockSize;
    return from + blockSize <= this.promptTokens.length ? from : 0;
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
      const toks = this.blockArray(k, blockSize);
      const from = this.blockOffset(k, blockSize);
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

  /** Keep a token's text for the finish event (a request that does not stream). */
  deferText(text: string): void {
    this.#unsent += text;
  }

  /** Emit the finish event; `text` follows any text deferred so far. */
  finish(reason: FinishReason, now: number, text: string, error?: string): void {
    this.status = "finished";
    text = this.#unsent + text;
    this.#unsent = "";
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
      firstTokenTime: this.firstTokenTime,
      lastTokenTime: this.lastTokenTime,
      maxTokenGap: this.maxTokenGap,
      numPreemptions: this.numPreemptions,
    });
  }
}

function maxLength(strings: readonly string[]): number {
  let m = 0;
  for (const s of strings) m = Math.max(m, s.length);
  return m;
}
