/**
 * `PlanBuilder`: the bookkeeping every batcher needs (token and sequence budgets, free
 * blocks after this step's allocations and preemptions, admission calls), so a batcher is
 * only its policy. The engine checks the resulting plan anyway.
 *
 * @module
 */

import type { EngineLimits, EngineView, Plan, RequestView, ScheduledChunk } from "./types.ts";
import { Request } from "./request.ts";

/**
 * The default token budget of a batcher that never chunks a prompt: room for the longest
 * prompt the model takes (its context length), and at least 2,048 tokens.
 */
export function wholePromptBudget(limits: EngineLimits): number {
  return Math.max(limits.maxModelLen, 2048);
}

/** Builders made so far: each marks the engine's requests with its own number. */
let builders = 0;

/** Decides admission for one waiting request (the engine wires the admission plugin here). */
export type AdmitFn = (
  req: RequestView,
  state: { freeBlocks: number; blocksNeeded: number; admitted: readonly RequestView[] },
) => boolean;

/** Accumulates one step's plan under budgets and the memory the pool has. */
export class PlanBuilder {
  /** Tokens still allowed this step. */
  tokensLeft: number;
  /** Sequences still allowed this step. */
  seqsLeft: number;
  /** Blocks the pool will have free after what is planned so far. */
  freeBlocks: number;
  readonly #view: EngineView;
  readonly #blockSize: number;
  readonly #admit: AdmitFn;
  /**
   * Whether a request is in the plan: an engine request carries this builder's mark (the
   * mark when preempted, the mark + 1 when scheduled or refused), a number compare per
   * check; other views (scripted tests) are kept in a map, true when preempted.
   */
  readonly #mark = 2 * ++builders;
  readonly #inPlan = new Map<string, boolean>();
  readonly #preempted: string[] = [];
  readonly #scheduled: ScheduledChunk[] = [];
  readonly #admitted: RequestView[] = [];
  readonly #refused: { id: string; reason: string }[] = [];

  /** Budgets are clamped to the engine's hard limits by the caller. */
  constructor(view: EngineView, budget: { tokens: number; seqs: number }, admit: AdmitFn) {
    this.#view = view;
    this.#blockSize = view.kv.blockSize;
    this.#admit = admit;
    this.tokensLeft = budget.tokens;
    this.seqsLeft = budget.seqs;
    this.freeBlocks = view.kv.freeBlocks;
  }

  /** Tokens `req` still has to compute before it can sample (1 for a decode). */
  remaining(req: RequestView): number {
    const computed = req.status === "waiting"
      ? this.#view.cachedPrefixTokens(req)
      : req.numComputedTokens;
    return req.numTokens - computed;
  }

  /** Whether `req` is already in the plan (scheduled or preempted). */
  has(req: RequestView): boolean {
    if (req instanceof Request) return (req.builderMark | 1) === this.#mark + 1;
    return this.#inPlan.has(req.id);
  }

  /** Whether `req` was preempted in this plan. */
  isPreempted(req: RequestView): boolean {
    if (req instanceof Request) return req.builderMark === this.#mark;
    return this.#inPlan.get(req.id) === true;
  }

  /** Requests preempted so far. */
  get numPreempted(): number {
    return this.#preempted.length;
  }

  /** Requests scheduled so far. */
  get size(): number {
    return this.#scheduled.length;
  }

  /** Tokens scheduled so far. */
  get tokensUsed(): number {
    let n = 0;
    for (const c of this.#scheduled) n += c.numTokens;
    return n;
  }

  /** Blocks `req` needs to compute `numTokens` more tokens. */
  blocksNeeded(req: RequestView, numTokens: number): number {
    return this.#view.blocksNeeded(req, numTokens);
  }

  /**
   * Schedule `numTokens` of a running request if budgets and memory allow; false (and
   * nothing changed) otherwise.
   */
  tryAdd(req: RequestView, numTokens: number): boolean {
    if (numTokens <= 0 || numTokens > this.tokensLeft || this.seqsLeft <= 0 || this.has(req)) {
      return false;
    }
    return this.#addIfRoom(req, numTokens);
  }

  #addIfRoom(req: RequestView, numTokens: number): boolean {
    // An engine request that runs: its need directly (this runs per sequence per step).
    const need = req instanceof Request && req.status === "running"
      ? Math.max(0, req.blocksFor(numTokens, this.#blockSize) - req.blockTable.length)
      : this.#view.blocksNeeded(req, numTokens);
    if (need > this.freeBlocks) return false;
    this.#take(req, numTokens, need);
    return true;
  }

  /**
   * Start a waiting request with its first `numTokens` tokens: budgets, then admission,
   * then memory. False (and nothing changed) when any of them says no.
   */
  tryAdmit(req: RequestView, numTokens: number): boolean {
    if (numTokens <= 0 || numTokens > this.tokensLeft || this.seqsLeft <= 0 || this.has(req)) {
      return false;
    }
    const need = this.#view.blocksNeeded(req, numTokens);
    if (need > this.freeBlocks) return false;
    const ok = this.#admit(req, {
      freeBlocks: this.freeBlocks,
      blocksNeeded: need,
      admitted: this.#admitted,
    });
    if (!ok) return false;
    this.#admitted.push(req);
    this.#take(req, numTokens, need);
    return true;
  }

  /**
   * Schedule a running request, preempting victims from the tail of `running` (the
   * scheduler's order) while memory is short; when no other victim is left, `req` itself
   * is preempted. Returns what happened; "no-budget" means the token or sequence budget,
   * not memory, was the limit.
   */
  addOrPreempt(
    req: RequestView,
    numTokens: number,
    running: readonly RequestView[],
  ): "added" | "preempted-self" | "no-budget" {
    if (numTokens <= 0 || numTokens > this.tokensLeft || this.seqsLeft <= 0) return "no-budget";
    if (this.has(req)) throw new Error(`request ${req.id} is already in the plan`);
    for (let tail = running.length - 1;;) {
      if (this.#addIfRoom(req, numTokens)) return "added";
      while (tail >= 0 && (running[tail] === req || this.has(running[tail]))) tail--;
      if (tail < 0) {
        this.preempt(req);
        return "preempted-self";
      }
      this.preempt(running[tail]);
    }
  }

  /**
   * Schedule the running requests in the scheduler's order, each the tokens it has left
   * (at most `maxChunk`), preempting from the tail of `running` while memory is short. Stops
   * at the first request the token or sequence budget cannot take.
   */
  addRunning(running: readonly RequestView[], maxChunk = Infinity): void {
    // Indexed: iterating a frozen queue with for-of allocates per element in V8.
    for (let i = 0; i < running.length; i++) {
      const req = running[i];
      if (this.has(req)) continue;
      const n = Math.min(this.remaining(req), this.tokensLeft, maxChunk);
      if (this.addOrPreempt(req, n, running) === "no-budget") break;
    }
  }

  /** Preempt a running request (recompute): its blocks return to the pool. */
  preempt(req: RequestView): void {
    if (this.has(req)) {
      throw new Error(`request ${req.id} is already in the plan; it cannot also be preempted`);
    }
    this.#put(req, true);
    this.#preempted.push(req.id);
    this.freeBlocks += this.#view.blocksFreedBy(req);
  }

  /** Refuse a waiting request this policy can never serve; it ends with `reason` as its error. */
  refuse(req: RequestView, reason: string): void {
    if (this.has(req)) {
      throw new Error(`request ${req.id} is already in the plan; it cannot also be refused`);
    }
    this.#put(req, false);
    this.#refused.push({ id: req.id, reason });
  }

  /** The plan built so far. */
  build(): Plan {
    const plan: Plan = { scheduled: this.#scheduled.slice(), preempted: this.#preempted.slice() };
    if (this.#refused.length > 0) plan.refused = this.#refused.slice();
    return plan;
  }

  #put(req: RequestView, preempted: boolean): void {
    if (req instanceof Request) req.builderMark = preempted ? this.#mark : this.#mark + 1;
    else this.#inPlan.set(req.id, preempted);
  }

  #take(req: RequestView, numTokens: number, blocks: number): void {
    this.#put(req, false);
    this.#scheduled.push({ id: req.id, numTokens });
    this.tokensLeft -= numTokens;
    this.seqsLeft -= 1;
    this.freeBlocks -= blocks;
  }
}
