/**
 * The slot interfaces: what a plugin of each slot implements. A slot holds exactly one
 * plugin; composition is by slots (DESIGN.md, "Small slots that compose").
 *
 * The engine owns all state. A policy gets the read-only {@link EngineView} and returns
 * decisions; the engine checks and applies them.
 *
 * @module
 */

import type {
  Batch,
  EngineLimits,
  EngineView,
  FinishReason,
  Plan,
  RequestView,
  StepOutput,
} from "./types.ts";
import type { Model } from "./model/types.ts";
import type { PlanBuilder } from "./plan_builder.ts";

/** Candidates in the order a scheduler wants them served. */
export interface SchedulerOrder {
  /** Running requests, most important first; preemption victims are taken from the tail. */
  running: readonly RequestView[];
  /** Waiting requests, most important first; admission is tried in this order. */
  waiting: readonly RequestView[];
  /** Running requests to preempt now, to make room for more important waiting ones. */
  preempt?: readonly RequestView[];
}

/** Optional lifecycle hooks any policy may implement to keep private statistics. */
export interface PolicyHooks {
  /** A request arrived (it is in `view.waiting`). */
  onArrival?(req: RequestView, now: number): void;
  /** A request ended. */
  onFinish?(req: RequestView, reason: FinishReason, now: number): void;
  /** Hand private state to a successor during a hot swap. */
  exportState?(): unknown;
  /** Receive a predecessor's private state during a hot swap. */
  importState?(state: unknown): void;
  /**
   * Release resources (an executor's workers and GPU buffers, a draft model's executor)
   * when swapped away or when the engine closes.
   */
  close?(): Promise<void> | void;
}

/** Slot `scheduler`: the order of candidates and who gets preempted. */
export interface Scheduler extends PolicyHooks {
  /** Order running and waiting requests for this step. */
  order(view: EngineView): SchedulerOrder;
}

/** Slot `admission`: may a waiting request start now, given memory. */
export interface Admission extends PolicyHooks {
  /**
   * Decide for the waiting request `req`, tried in scheduler order. `freeBlocks` is what
   * the pool will have after the allocations already planned this step; `blocksNeeded` is
   * what `req`'s first chunk takes from it; `admitted` lists requests admitted earlier in
   * this step.
   */
  admit(
    req: RequestView,
    view: EngineView,
    state: { freeBlocks: number; blocksNeeded: number; admitted: readonly RequestView[] },
  ): boolean;
}

/** Tools the engine lends a batcher for one step. */
export interface StepTools {
  /** A fresh plan builder with the given budgets (clamped to the engine's limits). */
  builder(budget: { tokens: number; seqs: number }): PlanBuilder;
}

/** Slot `batcher`: how many tokens each request computes this iteration. */
export interface Batcher extends PolicyHooks {
  /** Build the step's plan from the scheduler's order. */
  plan(view: EngineView, order: SchedulerOrder, tools: StepTools): Plan;
}

/** Slot `kvcache`: prefix reuse and the eviction order of cached free blocks. */
export interface KvCachePolicy extends PolicyHooks {
  /** Whether full blocks are hashed and reused across requests. */
  readonly prefixCaching: boolean;
  /** Number of cached free blocks it tracks. */
  readonly size: number;
  /** A hashed block lost its last reference; it may be kept for reuse until evicted. */
  onCachedFree(block: number, now: number, owner: RequestView | undefined): void;
  /** A cached free block was taken back by a prefix hit. */
  onReuse(block: number): void;
  /** Choose a cached free block to evict, or -1 when it tracks none. */
  evict(now: number): number;
  /**
   * Whether it keeps a finished turn of this program pinned for the program's next turn
   * (Continuum); a policy that does not pin leaves it out.
   */
  pinned?(programId: string): boolean;
  /**
   * RelayAttention: the shared prompt whose KV the executor keeps contiguous this step, or
   * undefined. Requests whose prompt extends it skip those positions (their blocks start
   * after it). Used only with an executor that declares `relay`.
   */
  relayPrompt?(candidates: readonly RequestView[]): SharedPrompt | undefined;
}

/**
 * Slot `speculation`: draft tokens for the step's decodes, which the target model verifies
 * in the same pass (speculative decoding). The engine keeps the longest prefix of each
 * draft that matches what the target samples, plus the target's next token, so the tokens
 * are exactly those of decoding one at a time. A speculator without `propose` never drafts.
 */
export interface Speculator extends PolicyHooks {
  /**
   * Drafts for `decodes`: the running requests this step decodes one token each (greedy or
   * seeded sampling, no log-probabilities, no shared relay prompt). The engine trims a
   * draft to the step's token budget, the free KV blocks and the request's limits.
   */
  propose?(view: EngineView, decodes: readonly RequestView[]): Proposal;
  /** After the step ran: what each drafted request had proposed and had accepted. */
  onVerified?(results: readonly VerifyResult[], now: number): void;
}

/** What a speculator proposes for one step. */
export interface Proposal {
  /** Draft tokens per decode, in the order given (empty or undefined: no draft). */
  drafts: readonly (readonly number[] | undefined)[];
  /** Seconds the drafting takes on a simulated device (added to the step on a virtual clock). */
  seconds?: number;
}

/** The outcome of one request's draft. */
export interface VerifyResult {
  /** Request id. */
  readonly id: string;
  /** Draft tokens verified (after trimming). */
  readonly proposed: number;
  /** Of them, accepted. */
  readonly accepted: number;
}

/** A shared prompt (RelayAttention): its tokens and an id that changes with them. */
export interface SharedPrompt {
  /** Changes whenever the tokens change. */
  readonly id: string;
  /** Token ids, BOS included. */
  readonly tokens: readonly number[];
}

/** Slot `executor`: runs one batch. */
export interface Executor extends PolicyHooks {
  /** True when no tensors run and durations are predicted (virtual clock, oracle allowed). */
  readonly simulated: boolean;
  /** Whether it runs `prefixed` sequences after a `Batch.relay` shared prompt (RelayAttention). */
  readonly relay?: boolean;
  /** Whether it verifies draft tokens (`BatchSequence.drafts`): speculative decoding. */
  readonly verify?: boolean;
  /** A step-time model, for policies that size batches to an SLO (simulated executors). */
  readonly costModel?: CostModel;
  /** Run one iteration and return the sampled tokens. */
  run(batch: Batch): Promise<StepOutput> | StepOutput;
  /**
   * Preemption by swapping (optional; without it preempted requests are recomputed): copy
   * the KV of each `out` block to its host slot, then of each `in` host slot to its block.
   * The engine calls it before the step's `run`; a block given back by a swap-out may be
   * written by a swap-in of the same call, so the copies out come first. A simulated
   * executor returns the seconds the copies take.
   */
  swap?(
    out: readonly SwapCopy[],
    into: readonly SwapCopy[],
  ): Promise<number | void> | number | void;
}

/** One KV block copied between device memory and a host swap slot. */
export interface SwapCopy {
  /** Block id in the KV pool. */
  readonly block: number;
  /** Host swap slot, `0 .. swap space - 1`. */
  readonly slot: number;
}

/** Maps a slot name to the implementation its plugins return. */
export interface SlotTypes {
  /** Candidate order and preemption victims. */
  scheduler: Scheduler;
  /** Admission under memory. */
  admission: Admission;
  /** Tokens per request per iteration. */
  batcher: Batcher;
  /** Prefix reuse and eviction. */
  kvcache: KvCachePolicy;
  /** Runs batches. */
  executor: Executor;
  /** Draft tokens for speculative decoding. */
  speculation: Speculator;
}

/** Access to hidden facts; present only when the executor is simulated. */
export interface Oracle {
  /** The true output length of a request, if the workload knows it. */
  outputLength(id: string): number | undefined;
}

/** Predicts how long a step takes; offered by simulated executors and fitted profiles. */
export interface CostModel {
  /**
   * Seconds for one iteration with `prefillTokens` prompt tokens (over `prefillContext`
   * tokens of earlier context in total) and `decodes` decodes reading `decodeContext`
   * cached tokens in total.
   */
  stepTime(shape: {
    prefillTokens: number;
    prefillContext: number;
    decodes: number;
    decodeContext: number;
  }): number;
  /** Seconds to copy `tokens` tokens of KV between device and host memory, if known. */
  swapTime?(tokens: number): number;
}

/** What `create(options, ctx)` receives besides its options. */
export interface PluginContext {
  /** The model served. */
  readonly model: Model;
  /** KV pool geometry. */
  readonly kv: { readonly blockSize: number; readonly numBlocks: number };
  /** Hard limits. */
  readonly limits: EngineLimits;
  /** Engine seed, for plugins that draw random numbers. */
  readonly seed: number;
  /** Log one line (prefixed with the plugin's name by the caller). */
  log(message: string): void;
  /** Hidden facts, only with a simulated executor (oracle baselines need it). */
  readonly oracle?: Oracle;
  /** A step-time model, when the executor offers one. */
  readonly costModel?: CostModel;
  /** Blocks of the host tier of the prefix cache (0: none): evicted KV may come back. */
  readonly hostCacheBlocks?: number;
}
