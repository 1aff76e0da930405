/**
 * The engine's vocabulary: requests, the read-only view policies see, the plan they
 * return, the batch an executor runs and what it gives back.
 *
 * Every slot interface lives in `core/slots.ts`; this module holds only data shapes.
 *
 * @module
 */

/** Sampling and stopping parameters of one request, all filled in. */
export interface SamplingParams {
  /** 0 means greedy (argmax). */
  temperature: number;
  /** Keep only the k most likely tokens; 0 turns it off. */
  topK: number;
  /** Nucleus sampling mass in (0, 1]; 1 turns it off. */
  topP: number;
  /** Per-request seed: the same seed gives the same tokens whatever else is batched. */
  seed: number;
  /** Most tokens to generate. */
  maxTokens: number;
  /** Extra token ids that end the request (the token is kept in the output). */
  stopTokenIds: number[];
  /** Strings that end the request; the text is cut before the match. */
  stop: string[];
  /** Keep generating past the model's end-of-sequence token. */
  ignoreEos: boolean;
  /** Number of top alternatives to return per token with their log-probabilities; -1 = none. */
  logprobs: number;
}

/**
 * Token ids: a plain array, or an `Int32Array`, which lives outside the garbage-collected
 * heap (cheaper for long prompts, and what simulations use). Read-only to whoever receives it.
 */
export type TokenIds = readonly number[] | Int32Array;

/** What a caller submits. Only the prompt is required. */
export interface RequestInput {
  /** Unique id; generated when absent. */
  id?: string;
  /** Prompt as token ids (kept by reference: do not change them after submitting). Either this or `prompt`. */
  promptTokens?: TokenIds;
  /** Prompt as text, encoded with the model's tokenizer. */
  prompt?: string;
  /** Sampling parameters; anything missing takes the engine default. */
  sampling?: Partial<SamplingParams>;
  /** Scheduling priority as in vLLM: a lower value is served sooner (default 0). */
  priority?: number;
  /** Arrival time on the engine clock (seconds); defaults to now. */
  arrivalTime?: number;
  /** Identifies a multi-turn program or user, for program-aware policies. */
  programId?: string;
  /** What an agent says of this turn of its program (see {@link TurnInfo}). */
  turn?: TurnInfo;
  /**
   * Hidden facts that only a simulated executor and oracle baselines may use (the true
   * output length of a workload request). Never part of the policies' view.
   */
  hidden?: { outputLength: number };
  /**
   * Emit a token event per generated token (default true). With false the listener gets
   * only the finish event, which carries the text and the token timing: for batch jobs
   * and simulations that need only the result (vLLM's `FINAL_ONLY` output kind).
   */
  stream?: boolean;
}

/**
 * What a multi-turn agent tells about one turn of its program: program-aware policies
 * (Continuum's KV time-to-live) keep a finished turn's KV only while a next turn is coming.
 */
export interface TurnInfo {
  /** This is the program's last turn: no follow-up will extend its context. */
  last?: boolean;
  /**
   * The tool this turn's response calls before the next turn (e.g. `bash`, `fetch_url`),
   * so that pauses can be learnt per tool.
   */
  tool?: string;
}

/** Where a request is in its life. */
export type RequestStatus = "waiting" | "running" | "finished";

/** Why a request ended. */
export type FinishReason = "stop" | "length" | "abort" | "error";

/** The read-only face of a request that policies see. */
export interface RequestView {
  /** Unique id. */
  readonly id: string;
  /** Arrival time on the engine clock, seconds. */
  readonly arrivalTime: number;
  /** Caller-given priority (default 0). */
  readonly priority: number;
  /** Program (multi-turn session) this request belongs to, if any. */
  readonly programId: string | undefined;
  /** What its agent said of this turn, if anything. */
  readonly turn: Readonly<TurnInfo> | undefined;
  /** Prompt token ids. */
  readonly promptTokens: TokenIds;
  /** Tokens generated so far (they survive preemption). */
  readonly outputTokens: readonly number[];
  /** Prompt length plus tokens generated so far. */
  readonly numTokens: number;
  /** Tokens whose KV is in the cache (prefix hits included); the rest must be computed. */
  readonly numComputedTokens: number;
  /** KV blocks this request holds now. */
  readonly numBlocks: number;
  /** The request's cap on generated tokens. */
  readonly maxTokens: number;
  /** Where it is. */
  readonly status: RequestStatus;
  /** How often it was preempted (recompute or swap). */
  readonly numPreemptions: number;
  /** Tokens of KV it has swapped out to host memory (0 unless it waits after a swap). */
  readonly swappedTokens: number;
  /** Engine step at which it last ran, -1 before the first. */
  readonly lastScheduledStep: number;
  /** Engine clock when it first ran, or -1. */
  readonly firstScheduledTime: number;
  /** Engine clock of its first output token, or -1. */
  readonly firstTokenTime: number;
  /** Engine clock of its latest output token, or -1. */
  readonly lastTokenTime: number;
}

/** The KV cache as policies see it. */
export interface KvView {
  /** Tokens per block. */
  readonly blockSize: number;
  /** Blocks in the pool. */
  readonly totalBlocks: number;
  /** Blocks that can be allocated now (never used, or cached and evictable). */
  readonly freeBlocks: number;
  /** Fraction of blocks held by requests, 0..1. */
  readonly usage: number;
  /**
   * Whether the kvcache policy keeps a finished turn of this program pinned for its next
   * turn (Continuum's time-to-live); false with a policy that does not pin.
   */
  pinned(programId: string): boolean;
}

/** Hard limits the engine enforces on every plan, whatever the batcher says. */
export interface EngineLimits {
  /** Most tokens in one step (prefill chunks plus decodes). */
  readonly maxBatchTokens: number;
  /** Most requests in one step. */
  readonly maxBatchSeqs: number;
  /** Longest context (prompt plus output) the model accepts. */
  readonly maxModelLen: number;
}

/** The read-only snapshot of engine state handed to policies each step. */
export interface EngineView {
  /** Engine clock, seconds. */
  readonly now: number;
  /** Iteration number. */
  readonly step: number;
  /**
   * Waiting requests in arrival order (preempted ones are put back at the head). This and
   * `running` are frozen arrays, the same object from step to step until the queue changes
   * (so a policy may cache work keyed on them).
   */
  readonly waiting: readonly RequestView[];
  /** Running requests (they hold KV), in the order they started. */
  readonly running: readonly RequestView[];
  /** The KV cache. */
  readonly kv: KvView;
  /** Hard limits. */
  readonly limits: EngineLimits;
  /**
   * Tokens of this waiting request's prompt already in the prefix cache (a multiple of
   * the block size, and always leaving at least one token to compute).
   */
  cachedPrefixTokens(req: RequestView): number;
  /**
   * Blocks that must come out of the free pool for `req` to compute `numNewTokens` more
   * tokens; for a waiting request this accounts for its prefix hits.
   */
  blocksNeeded(req: RequestView, numNewTokens: number): number;
  /** Blocks that return to the free pool if running `req` is preempted (those it alone holds). */
  blocksFreedBy(req: RequestView): number;
}

/** One request's share of a step. */
export interface ScheduledChunk {
  /** Request id. */
  id: string;
  /** Tokens to compute this step (a prefill chunk, or 1 for a decode). */
  numTokens: number;
}

/** A step's plan: the whole decision of scheduler, admission and batcher. */
export interface Plan {
  /** Requests to run and how many tokens each, in batch order. */
  scheduled: ScheduledChunk[];
  /** Running requests to preempt (recompute) before the step. */
  preempted: string[];
  /** Waiting requests this policy can never serve (e.g. a prompt over its budget): they end with an error. */
  refused?: { id: string; reason: string }[];
}

/** One sequence in an executor batch. */
export interface BatchSequence {
  /** Request id. */
  id: string;
  /** Token ids to feed this step (may be a view of the prompt: never write to it). */
  tokens: TokenIds;
  /** Position of the first of `tokens` (the number of tokens already in the KV cache). */
  startPos: number;
  /** Physical KV block ids covering positions `0 .. startPos + tokens.length - 1`. */
  blockTable: readonly number[];
  /** Whether to sample a token after the last fed token (the prompt is complete). */
  sample: boolean;
  /** Sampling parameters. */
  sampling: SamplingParams;
  /** Index of the token to sample among the request's outputs (drives the seeded RNG). */
  outputIndex: number;
  /** Hidden facts for a simulated executor (see {@link RequestInput.hidden}). */
  hidden?: { outputLength: number };
  /**
   * Speculative decoding: the last `drafts` of `tokens` are draft tokens to verify. The
   * executor samples after each of the last `drafts + 1` fed tokens (output indices
   * `outputIndex ..`) and returns them in {@link StepOutput.verified}. Only with an executor
   * that declares `verify`.
   */
  drafts?: number;
  /**
   * RelayAttention: positions `0 .. batch.relay.tokens.length - 1` are the shared prompt's,
   * held by the executor, not in `blockTable`; `startPos` stays absolute and block-table
   * slot 0 holds position `batch.relay.tokens.length`.
   */
  prefixed?: boolean;
}

/**
 * What an executor runs: one iteration. The batch and its sequences are valid during
 * `run` only (the engine reuses them), so an executor copies what it keeps.
 */
export interface Batch {
  /** Iteration number. */
  step: number;
  /** Sequences, prefill chunks and decodes mixed. */
  sequences: BatchSequence[];
  /** Sum of `tokens.length`. */
  numTokens: number;
  /** Sequences that decode one new token (the rest are prompt chunks or recompute). */
  numDecodes: number;
  /**
   * RelayAttention: the shared prompt of the step's `prefixed` sequences (BOS included);
   * the executor computes its KV once per `id` and keeps it contiguous.
   */
  relay?: { id: string; tokens: readonly number[] };
}

/** Log-probabilities of one sampled token. */
export interface TokenLogprob {
  /** Log-probability of the sampled token. */
  logprob: number;
  /** Top alternatives, most likely first. */
  top: { token: number; logprob: number }[];
}

/** What an executor returns for a batch. */
export interface StepOutput {
  /**
   * Sampled token per sequence (same order as the batch); -1 where `sample` was false. The
   * engine reads them before the next `run`, so an executor may reuse one array.
   */
  tokens: Int32Array | number[];
  /** Log-probabilities per sequence where requested, else undefined entries. */
  logprobs?: (TokenLogprob | undefined)[];
  /** Predicted step duration in seconds (simulated executors); wall clock is used otherwise. */
  duration?: number;
  /**
   * Speculative decoding: for each sequence with `drafts`, the tokens sampled after each of
   * its last `drafts + 1` fed tokens, in order (undefined entries elsewhere). `tokens[i]`
   * is then the first of them.
   */
  verified?: (Int32Array | number[] | undefined)[];
  /**
   * Full logits of each sampling sequence (undefined entries elsewhere), only when the
   * executor was created with `keepLogits: true`: for comparing executors in tests.
   */
  logits?: (Float32Array | undefined)[];
}

/** An event in a request's stream. */
export type RequestEvent =
  | {
    type: "token";
    /** Request id. */
    id: string;
    /** The new token id. */
    token: number;
    /** Text this token completes (may be empty while a UTF-8 character is partial). */
    text: string;
    /** Log-probabilities, when asked for. */
    logprob?: TokenLogprob;
    /** Engine clock when the token was produced. */
    time: number;
  }
  | {
    type: "finish";
    /** Request id. */
    id: string;
    /** Why it ended. */
    reason: FinishReason;
    /** Error message when `reason` is "error". */
    error?: string;
    /**
     * Text not delivered yet: what was held back for stop-string matching (the output is
     * every token event's text, then this), or the whole output of a request that does not
     * stream.
     */
    text: string;
    /** Token counts. */
    usage: { promptTokens: number; completionTokens: number; cachedTokens: number };
    /** Engine clock at the end. */
    time: number;
    /** Engine clock at arrival. */
    arrivalTime: number;
    /** Engine clock when first scheduled, or -1 if it never ran. */
    firstScheduledTime: number;
    /** Engine clock of the first output token, or -1 if there was none. */
    firstTokenTime: number;
    /** Engine clock of the last output token, or -1 if there was none. */
    lastTokenTime: number;
    /** Longest time between two consecutive output tokens, seconds (0 with fewer than 2). */
    maxTokenGap: number;
    /** Preemptions it suffered (recompute or swap). */
    numPreemptions: number;
  };
