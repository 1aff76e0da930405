/**
 * The engine: owns requests, queues, the KV block pool and block tables; asks the slot
 * plugins for decisions each iteration, checks and applies them, runs the batch on the
 * executor and commits the sampled tokens (DESIGN.md, "One iteration").
 *
 * The loop is the same on the wall clock and on a virtual clock: a simulated executor
 * returns a predicted duration and the clock jumps by it.
 *
 * @module
 */

import { setImmediate } from "node:timers";
import { blockHash, BlockPool, ROOT_HASH } from "./block_pool.ts";
import { HostKvCache } from "./host_cache.ts";
import { type Clock, WallClock } from "./clock.ts";
import { PluginError, UsageError } from "./errors.ts";
import { PlanBuilder } from "./plan_builder.ts";
import { Request, type RequestListener } from "./request.ts";
import { validateRequest } from "./request_input.ts";
import type {
  Admission,
  Batcher,
  Executor,
  KvCachePolicy,
  PluginContext,
  PolicyHooks,
  Proposal,
  Scheduler,
  SchedulerOrder,
  SharedPrompt,
  Speculator,
  StepTools,
  SwapCopy,
  VerifyResult,
} from "./slots.ts";
import type {
  Batch,
  BatchSequence,
  EngineLimits,
  EngineView,
  FinishReason,
  KvView,
  Plan,
  RequestEvent,
  RequestInput,
  RequestView,
  StepOutput,
  TokenLogprob,
} from "./types.ts";
import type { Model } from "./model/types.ts";
import type { Plugin } from "../plugins/define.ts";
import { parseOptions } from "../plugins/options.ts";
import type { Registry } from "../plugins/registry.ts";
import { builtinRegistry } from "../plugins/builtins.ts";

/** Which plugin fills a slot, and its options. */
export interface SlotChoice {
  /** Plugin name. */
  name: string;
  /** Raw options, validated against the plugin's schema. */
  options?: Record<string, unknown>;
}

/** Everything `Engine.create` needs; only the model is required. */
export interface EngineOptions {
  /** The model served. */
  model: Model;
  /** Plugin per slot; slots left out get their default plugin. */
  plugins?: Record<string, SlotChoice | undefined>;
  /** Where plugins are looked up (default: the built-ins). */
  registry?: Registry;
  /** Tokens per KV block (default 16). */
  blockSize?: number;
  /** KV pool size in blocks (default: 16,384 tokens, less for big models: 512 MiB of f32 KV, but two full contexts at least). */
  numBlocks?: number;
  /** Longest context (default: the model's). */
  maxModelLen?: number;
  /** Hard cap on tokens per step, whatever the batcher says (default 16,384). */
  maxBatchTokens?: number;
  /** Hard cap on sequences per step (default 1,024). */
  maxBatchSeqs?: number;
  /** Seed for request seeds and plugins (default 0). */
  seed?: number;
  /** Clock (default: wall clock). */
  clock?: Clock;
  /** Decode tokens to text for every request (default true; simulations turn it off). */
  detokenize?: boolean;
  /** Wall-clock budget of one plugin decision in ms; over it, the default decides (default 50; never on a virtual clock). */
  decisionBudgetMs?: number;
  /** Log sink (default: stderr). */
  log?: (line: string) => void;
  /**
   * Called with the seconds since the same request's previous token, for every output
   * token after a request's first (the inter-token latency of `vllm bench serve`), whether
   * or not the request streams, in token order; `count` consecutive tokens of one step had
   * the same gap (most of a step's decodes do). Simulations collect the ITL distribution here.
   */
  onTokenGap?: (seconds: number, count: number) => void;
  /**
   * What preemption does with a request's KV: "recompute" (default) drops it and computes
   * it again later; "swap" copies it to host memory and back (vLLM's swap space) when the
   * executor can swap and the swap space has room, and recomputes otherwise.
   */
  preemption?: "recompute" | "swap";
  /** Host swap space in KV blocks (default: what 4 GiB holds of f16 KV, vLLM's default). */
  swapBlocks?: number;
  /**
   * A host-memory tier of the prefix cache, in KV blocks (default 0: none). Hashed blocks
   * evicted from the pool are copied there, and prefix lookups that miss on the device
   * continue there; a hit is copied back before the step runs (CPU offload, as LMCache
   * gives vLLM). Needs an executor that swaps.
   */
  hostCacheBlocks?: number;
}

/** What happened in one iteration. */
export interface StepReport {
  /** Iteration number. */
  step: number;
  /** Clock at the start. */
  start: number;
  /** Seconds the step took (predicted on a virtual clock). */
  duration: number;
  /** Requests in the batch. */
  numSeqs: number;
  /** Tokens in the batch. */
  numTokens: number;
  /** Prompt tokens computed (prefill chunks, recompute included). */
  prefillTokens: number;
  /** Decode tokens computed. */
  decodeTokens: number;
  /** Requests preempted before the step. */
  numPreempted: number;
  /** Seconds each slot's plugin spent deciding. */
  decisionTime: Record<string, number>;
  /** Slots whose plugin failed and was replaced by the default for this step. */
  fallbacks: string[];
}

/** Per-slot decision time totals. */
export interface DecisionStats {
  /** Seconds, summed over steps. */
  total: number;
  /** Largest single step, seconds. */
  max: number;
  /** Steps measured. */
  steps: number;
}

/** Counters and gauges. */
export interface EngineStats {
  /** Requests holding KV. */
  numRunning: number;
  /** Requests queued. */
  numWaiting: number;
  /** Fraction of KV blocks in use. */
  kvUsage: number;
  /** Iterations run. */
  steps: number;
  /** Preemptions (recompute and swap). */
  preemptions: number;
  /** Preemptions that swapped the KV out instead of dropping it. */
  swapOuts: number;
  /** Host swap slots in use. */
  swapBlocksUsed: number;
  /** Prompt tokens of requests admitted (first admission only). */
  promptTokens: number;
  /** Tokens generated. */
  generationTokens: number;
  /** Prompt tokens served from the prefix cache. */
  prefixHitTokens: number;
  /** Prompt tokens of them copied back from the host KV cache. */
  hostHitTokens: number;
  /** Evicted blocks copied to the host KV cache. */
  hostStores: number;
  /** Draft tokens verified (speculative decoding). */
  draftTokens: number;
  /** Of them, accepted. */
  acceptedDraftTokens: number;
  /** Cached blocks evicted. */
  evictions: number;
  /** Tokens computed again after preemption. */
  recomputedTokens: number;
  /** Requests finished, by reason. */
  finished: Record<FinishReason, number>;
  /** Decision time per slot. */
  decisionTime: Record<string, DecisionStats>;
}

interface ActiveSlot {
  plugin: Plugin;
  options: unknown;
  impl: unknown;
}

const DECIDING_SLOTS = ["scheduler", "admission", "batcher", "kvcache", "speculation"] as const;

/** The serving engine. Create with {@link Engine.create}. */
export class Engine {
  /** The model served. */
  readonly model: Model;
  /** Plugin registry used for swaps. */
  readonly registry: Registry;
  /** The clock (wall or virtual). */
  readonly clock: Clock;
  /** Hard limits on every plan. */
  readonly limits: EngineLimits;
  /** The KV block pool. */
  readonly pool: BlockPool;
  /** Seed. */
  readonly seed: number;

  readonly #log: (line: string) => void;
  readonly #detokenize: boolean;
  readonly #onTokenGap: ((seconds: number, count: number) => void) | undefined;
  readonly #budgetMs: number;
  readonly #slots = new Map<string, ActiveSlot>();
  readonly #pending = new Map<string, ActiveSlot>();
  readonly #defaults = new Map<string, unknown>();
  readonly #reported = new Set<string>();
  readonly #byId = new Map<string, Request>();
  #waiting: Request[] = [];
  #running: Request[] = [];
  #step = 0;
  #now = 0;
  #counter = 0;
  #planChecks = 0;
  readonly #preemption: "recompute" | "swap";
  readonly #swapBlocks: number;
  /** Free host swap slots. */
  readonly #swapFree: number[] = [];
  /** This step's copies to and from host memory, and the requests swapped out by it. */
  #swaps = { out: [] as SwapCopy[], into: [] as SwapCopy[], outReqs: [] as Request[] };
  /** The plan last checked and its scheduled requests, so applying it looks none up again. */
  #checked: { plan: Plan | undefined; reqs: Request[] } = { plan: undefined, reqs: [] };
  /** The latest batch's sequences and their requests (reused). */
  readonly #batchSeqs: BatchSequence[] = [];
  readonly #batchReqs: Request[] = [];
  /** Prefix-hit block ids of the latest lookup (reused). */
  readonly #hitScratch: number[] = [];
  /** The host tier of the prefix cache, if any. */
  #host: HostKvCache | undefined;
  /** This step's verified drafts, for the speculator. */
  #verified: VerifyResult[] = [];
  #stepListeners: ((r: StepReport) => void)[] = [];
  /**
   * The queues as policies see them: frozen copies, renewed when a queue changes. A policy
   * that sorts one in place fails (and the default decides that step) without touching the
   * engine's own queues.
   */
  #viewWaiting: readonly Request[] = [];
  #viewRunning: readonly Request[] = [];
  #waitingChanged = true;
  #runningChanged = true;
  /** Whether any request was ever placed after a shared prompt (the stale check runs then only). */
  #relayPlaced = false;
  /** This step's shared prompt (RelayAttention) and the hash its requests' blocks chain on. */
  #relay: (SharedPrompt & { root: number }) | undefined;
  #stopping = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #stats = {
    steps: 0,
    preemptions: 0,
    swapOuts: 0,
    promptTokens: 0,
    generationTokens: 0,
    prefixHitTokens: 0,
    hostHitTokens: 0,
    hostStores: 0,
    draftTokens: 0,
    acceptedDraftTokens: 0,
    recomputedTokens: 0,
    finished: { stop: 0, length: 0, abort: 0, error: 0 } as Record<FinishReason, number>,
    decisionTime: {} as Record<string, DecisionStats>,
  };
  readonly #view: EngineView;

  private constructor(options: EngineOptions, registry: Registry, pool: BlockPool) {
    this.model = options.model;
    this.registry = registry;
    this.clock = options.clock ?? new WallClock();
    this.seed = options.seed ?? 0;
    this.#log = options.log ?? ((line) => console.error(line));
    this.#detokenize = options.detokenize ?? true;
    this.#onTokenGap = options.onTokenGap;
    this.#preemption = options.preemption ?? "recompute";
    this.#swapBlocks = options.swapBlocks ?? defaultSwapBlocks(options.model, pool.blockSize);
    for (let s = this.#swapBlocks - 1; s >= 0; s--) this.#swapFree.push(s);
    this.#budgetMs = options.decisionBudgetMs ?? 50;
    this.pool = pool;
    this.limits = {
      maxBatchTokens: options.maxBatchTokens ?? 16384,
      maxBatchSeqs: options.maxBatchSeqs ?? 1024,
      maxModelLen: options.maxModelLen ?? options.model.config.maxSeqLen,
    };
    this.#view = this.#makeView();
  }

  /** Build an engine: validate every plugin's options, create the plugins. */
  static async create(options: EngineOptions): Promise<Engine> {
    const registry = options.registry ?? builtinRegistry();
    const blockSize = options.blockSize ?? 16;
    if (!Number.isInteger(blockSize) || blockSize < 1 || blockSize > 1024) {
      throw new UsageError(
        `block size must be an integer from 1 to 1024, got ${blockSize}`,
        "--block-size",
      );
    }
    const numBlocks = options.numBlocks ??
      defaultNumBlocks(options.model, blockSize, options.maxModelLen);
    if (!Number.isInteger(numBlocks) || numBlocks < 2) {
      throw new UsageError(
        `the KV pool needs an integer of at least 2 blocks, got ${numBlocks}`,
        "--num-blocks",
      );
    }
    if (options.preemption !== undefined && !["recompute", "swap"].includes(options.preemption)) {
      throw new UsageError(
        `preemption must be "recompute" or "swap", got ${options.preemption}`,
        "--preemption",
      );
    }
    if (
      options.swapBlocks !== undefined &&
      !(Number.isInteger(options.swapBlocks) && options.swapBlocks >= 0)
    ) {
      throw new UsageError(
        `swap space must be a whole number of blocks (0 or more), got ${options.swapBlocks}`,
        "--swap-blocks",
      );
    }
    const hostBlocks = options.hostCacheBlocks ?? 0;
    if (!(Number.isInteger(hostBlocks) && hostBlocks >= 0)) {
      throw new UsageError(
        `the host KV cache must be a whole number of blocks (0 or more), got ${hostBlocks}`,
        "--host-cache-blocks",
      );
    }
    const maxModelLen = options.maxModelLen ?? options.model.config.maxSeqLen;
    if (!Number.isInteger(maxModelLen) || maxModelLen < 2) {
      throw new UsageError(
        `max model length must be an integer of at least 2, got ${maxModelLen}`,
        "--max-model-len",
      );
    }
    // The pool needs a policy before plugins exist; the real one replaces it below.
    const placeholder: KvCachePolicy = {
      prefixCaching: false,
      size: 0,
      onCachedFree() {},
      onReuse() {},
      evict: () => -1,
    };
    // The host tier copies evicted blocks by hash: register every block as it fills.
    const pool = new BlockPool(numBlocks, blockSize, placeholder, {
      lazyRegistration: hostBlocks === 0,
    });
    const engine = new Engine(options, registry, pool);
    const chosen = options.plugins ?? {};
    for (const slot of Object.keys(chosen)) registry.slot(slot);
    // The executor first: whether it is simulated decides what the others may see.
    const order = ["executor", ...registry.slotNames().filter((s) => s !== "executor")];
    for (const slot of order) {
      const spec = registry.slot(slot);
      const choice = chosen[slot] ?? { name: spec.defaultPlugin };
      if (!registry.has(slot, choice.name) && !chosen[slot]) continue; // a slot with no plugin yet
      const active = await engine.#build(slot, choice);
      engine.#slots.set(slot, active);
      // The host tier next, so that the policies see it in their context.
      if (slot === "executor" && hostBlocks > 0) {
        if (!engine.executor.swap) {
          await engine.close();
          throw new UsageError(
            `the host KV cache needs an executor that copies KV to host memory (reference, wasm, sim), not ${choice.name}`,
            "--host-cache-blocks",
          );
        }
        engine.#useHostCache(hostBlocks);
      }
    }
    engine.pool.replacePolicy(engine.#impl<KvCachePolicy>("kvcache"), 0);
    const spec = engine.#slots.get("speculation");
    if ((spec?.impl as Speculator | undefined)?.propose && !engine.executor.verify) {
      await engine.close();
      throw new UsageError(
        `speculative decoding (--speculation ${
          spec!.plugin.name
        }) needs an executor that verifies drafts (reference, wasm, webgpu, sim), not ${
          engine.#slots.get("executor")!.plugin.name
        }`,
        "--speculation",
      );
    }
    return engine;
  }

  /** Copy hashed blocks evicted from the pool to `blocks` host slots after the swap space. */
  #useHostCache(blocks: number): void {
    const host = new HostKvCache(blocks, this.#swapBlocks, this.pool.blockSize);
    this.#host = host;
    this.pool.onEvict = (block, hash, parent, tokens, from) => {
      const slot = host.store(hash, parent, tokens, from);
      if (slot < 0) return;
      this.#swaps.out.push({ block, slot });
      this.#stats.hostStores++;
    };
  }

  /**
   * Take from the host tier the blocks that continue `r`'s prefix after its `hits` device
   * hits (at most `max` in all), their slots into `slots`; without `slots`, only count them.
   * Returns how many.
   */
  #hostHits(r: Request, hits: number, max: number, slots: number[] | undefined): number {
    const host = this.#host;
    if (!host || host.size === 0 || r.base > 0) return 0;
    const bs = this.pool.blockSize;
    let n = 0;
    for (let k = hits; k < max; k++) {
      const hash = r.hashOfBlock(k, bs), parent = r.parentHashOfBlock(k, bs);
      const tokens = r.blockArray(k, bs), from = r.blockOffset(k, bs);
      if (!slots) {
        if (!host.has(hash, parent, tokens, from)) break;
      } else {
        const slot = host.take(hash, parent, tokens, from);
        if (slot < 0) break;
        slots.push(slot);
      }
      n++;
    }
    return n;
  }

  // ---------------------------------------------------------------- requests

  /** Requests waiting, in queue order. */
  get waiting(): readonly RequestView[] {
    return this.#view.waiting;
  }

  /** Requests running (holding KV). */
  get running(): readonly RequestView[] {
    return this.#view.running;
  }

  /** Whether any request is waiting or running. */
  get hasWork(): boolean {
    return this.#waiting.length > 0 || this.#running.length > 0;
  }

  /** A request by id, while it is waiting or running. */
  request(id: string): RequestView | undefined {
    return this.#byId.get(id);
  }

  /**
   * Queue a request; `listener` receives its token events and exactly one finish event.
   * Throws {@link UsageError} (and queues nothing) when the input is invalid.
   */
  add(input: RequestInput, listener: RequestListener): string {
    const req = validateRequest(input, listener, {
      model: this.model,
      maxModelLen: this.limits.maxModelLen,
      poolTokens: this.pool.numBlocks * this.pool.blockSize,
      seed: this.seed,
      serial: this.#counter++,
      now: this.clock.now(),
      inFlight: (id) => this.#byId.has(id),
    });
    this.#byId.set(req.id, req);
    this.#waiting.push(req);
    this.#waitingChanged = true;
    this.#hook("onArrival", (h) => h.onArrival?.(req, req.arrivalTime));
    this.#wake?.();
    return req.id;
  }

  /** Queue a request and iterate over its events (the last one is its finish event). */
  submit(input: RequestInput): AsyncIterable<RequestEvent> & { id: string } {
    const queue: RequestEvent[] = [];
    let notify: (() => void) | undefined;
    let done = false;
    const id = this.add(input, (ev) => {
      queue.push(ev);
      if (ev.type === "finish") done = true;
      notify?.();
    });
    const abort = () => this.abort(id);
    return {
      id,
      async *[Symbol.asyncIterator]() {
        let i = 0;
        try {
          while (true) {
            while (i < queue.length) yield queue[i++];
            if (done) return;
            await new Promise<void>((r) => notify = r);
            notify = undefined;
          }
        } finally {
          if (!done) abort();
        }
      },
    };
  }

  /** End a request now and free its blocks; false when it is not in flight. */
  abort(id: string): boolean {
    const req = this.#byId.get(id);
    if (!req || req.status === "finished") return false;
    this.#end(req, "abort", this.clock.now());
    return true;
  }

  // ---------------------------------------------------------------- plugins

  /** The plugin and options in each slot (pending swaps not yet applied are not shown). */
  plugins(): {
    slot: string;
    name: string;
    options: unknown;
    pending?: { name: string; options: unknown };
  }[] {
    return [...this.#slots].map(([slot, a]) => {
      const p = this.#pending.get(slot);
      return {
        slot,
        name: a.plugin.name,
        options: a.options,
        ...(p ? { pending: { name: p.plugin.name, options: p.options } } : {}),
      };
    });
  }

  /**
   * Replace a slot's plugin at the next iteration boundary. The new plugin is built and
   * validated now: if that fails, the old one stays and this throws. Requests in flight
   * keep their KV and tokens (an executor swap recomputes their KV).
   */
  async swap(slot: string, name: string, options: Record<string, unknown> = {}): Promise<void> {
    const active = await this.#build(slot, { name, options });
    this.#pending.set(slot, active);
    this.#wake?.();
  }

  /** Register a listener called after every step. */
  onStep(fn: (r: StepReport) => void): void {
    this.#stepListeners.push(fn);
  }

  /** The executor in use. */
  get executor(): Executor {
    return this.#impl<Executor>("executor");
  }

  // ---------------------------------------------------------------- stats

  /** Counters and gauges now. */
  get stats(): EngineStats {
    return {
      numRunning: this.#running.length,
      numWaiting: this.#waiting.length,
      kvUsage: this.pool.usedBlocks / this.pool.numBlocks,
      evictions: this.pool.evictions,
      swapBlocksUsed: this.#swapBlocks - this.#swapFree.length,
      ...structuredClone(this.#stats),
    };
  }

  // ---------------------------------------------------------------- the loop

  /** Copy the queues for the policies' view where they changed since the last copy. */
  #renewViewQueues(): void {
    if (this.#waitingChanged) {
      this.#viewWaiting = Object.freeze(this.#waiting.slice());
      this.#waitingChanged = false;
    }
    if (this.#runningChanged) {
      this.#viewRunning = Object.freeze(this.#running.slice());
      this.#runningChanged = false;
    }
  }

  /** Run one iteration; undefined when there is no work. */
  async step(): Promise<StepReport | undefined> {
    if (this.#pending.size > 0) await this.#applySwaps();
    if (!this.hasWork) return undefined;
    this.#step++;
    const start = this.clock.now();
    this.#now = start;
    const decisionTime: Record<string, number> = {};
    const fallbacks: string[] = [];
    this.#chooseRelay(start);
    let plan = this.#decide(decisionTime, fallbacks);
    if (plan.scheduled.length === 0 && !plan.refused?.length && this.#running.length === 0) {
      plan = this.#unstick(fallbacks);
    }
    const [batch, reqs] = this.#apply(plan);
    const draftSeconds = this.#speculate(batch, reqs, decisionTime);
    return (await this.#execute(
      batch,
      reqs,
      start,
      decisionTime,
      fallbacks,
      plan.preempted.length,
      draftSeconds,
    )).report;
  }

  /** Run a batch on the executor, move a virtual clock, commit the tokens, report the step. */
  async #execute(
    batch: Batch,
    reqs: Request[],
    start: number,
    decisionTime: Record<string, number>,
    fallbacks: string[],
    numPreempted: number,
    draftSeconds = 0,
  ): Promise<{ report: StepReport; ok: boolean }> {
    let out: StepOutput | undefined;
    let duration = 0;
    const { out: swapOut, into: swapIn } = this.#swaps;
    const swapped = swapOut.length > 0 || swapIn.length > 0
      ? await this.#runSwaps(batch)
      : NO_SWAPS;
    if (swapped.ok && batch.sequences.length > 0) {
      const t0 = performance.now();
      try {
        // A simulated executor answers at once: no promise to wait for.
        const res = this.executor.run(batch);
        out = isPromise(res) ? await res : res;
      } catch (e) {
        this.#failBatch(batch, e);
      }
      duration = out?.duration ?? (performance.now() - t0) / 1000;
      if (this.clock.virtual) this.clock.advance(duration);
    }
    duration += swapped.seconds + draftSeconds;
    if (out) this.#commit(batch, reqs, out, this.clock.now());
    this.#stats.steps++;
    const report: StepReport = {
      step: this.#step,
      start,
      duration,
      numSeqs: batch.sequences.length,
      numTokens: batch.numTokens,
      prefillTokens: batch.numTokens - batch.numDecodes,
      decodeTokens: batch.numDecodes,
      numPreempted,
      decisionTime,
      fallbacks,
    };
    for (let i = 0; i < this.#stepListeners.length; i++) this.#stepListeners[i](report);
    return { report, ok: out !== undefined };
  }

  /** Serve on the wall clock until {@link stop}: step while there is work, sleep otherwise. */
  run(): Promise<void> {
    this.#loop ??= (async () => {
      while (!this.#stopping) {
        if (!this.hasWork && this.#pending.size === 0) {
          await new Promise<void>((r) => this.#wake = r);
          this.#wake = undefined;
          continue;
        }
        const r = await this.step();
        // Let I/O (new requests, disconnects) in between steps: setImmediate costs ~13 us in
        // Deno where setTimeout(0) costs ~2 ms; sleep a little when nothing could run.
        await new Promise((res) => r && r.numTokens === 0 ? setTimeout(res, 1) : setImmediate(res));
      }
    })();
    return this.#loop;
  }

  /** Stop the serving loop after the current step. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#wake?.();
    await this.#loop;
    this.#loop = undefined;
    this.#stopping = false;
  }

  /** Stop, abort what is in flight and release the executor. */
  async close(): Promise<void> {
    await this.stop();
    for (const r of [...this.#running, ...this.#waiting]) this.abort(r.id);
    for (const a of [...this.#slots.values(), ...this.#pending.values()]) {
      await (a.impl as Partial<Executor>).close?.();
    }
  }

  // ---------------------------------------------------------------- internals

  #impl<T>(slot: string): T {
    return this.#slots.get(slot)!.impl as T;
  }

  #context(slot: string, name: string): PluginContext {
    const executor = this.#slots.get("executor")?.impl as Executor | undefined;
    const pending = this.#pending.get("executor")?.impl as Executor | undefined;
    const exec = pending ?? executor;
    return {
      model: this.model,
      kv: { blockSize: this.pool.blockSize, numBlocks: this.pool.numBlocks },
      limits: this.limits,
      seed: this.seed,
      log: (m) => this.#log(`[${slot} ${name}] ${m}`),
      oracle: exec?.simulated
        ? { outputLength: (id) => this.#byId.get(id)?.hidden?.outputLength }
        : undefined,
      costModel: exec?.costModel,
      hostCacheBlocks: this.#host?.capacity ?? 0,
    };
  }

  async #build(slot: string, choice: SlotChoice): Promise<ActiveSlot> {
    const plugin = this.registry.get(slot, choice.name);
    const options = parseOptions(plugin, choice.options ?? {});
    let impl: unknown;
    try {
      impl = await plugin.create(options as never, this.#context(slot, plugin.name));
    } catch (e) {
      if (e instanceof UsageError) throw e;
      throw new PluginError(slot, plugin.name, `create failed: ${(e as Error).message}`, {
        cause: e,
      });
    }
    if (!impl || typeof impl !== "object") {
      throw new PluginError(slot, plugin.name, "create returned no implementation");
    }
    return { plugin, options, impl };
  }

  async #applySwaps(): Promise<void> {
    const now = this.clock.now();
    for (const [slot, next] of this.#pending) {
      const old = this.#slots.get(slot);
      const oldImpl = old?.impl as PolicyHooks | undefined;
      const nextImpl = next.impl as PolicyHooks;
      try {
        const state = oldImpl?.exportState?.();
        if (state !== undefined) nextImpl.importState?.(state);
      } catch (e) {
        this.#log(
          `[${slot} ${next.plugin.name}] private state not handed over: ${(e as Error).message}`,
        );
      }
      if (slot === "kvcache") this.pool.replacePolicy(next.impl as KvCachePolicy, now);
      if (slot === "executor") {
        // The KV contents live in the old executor: recompute everything on the new one.
        for (const r of [...this.#running].reverse()) this.#preempt(r, now);
        for (const r of this.#waiting) this.#dropSwap(r); // host copies belong to the old one
        this.pool.dropCache(now);
        this.#host?.clear();
        if (this.#host && !(next.impl as Executor).swap) {
          this.#host = this.pool.onEvict = undefined;
          this.#log(`[executor] ${next.plugin.name} cannot swap: the host KV cache is off`);
        }
        await (old?.impl as Executor | undefined)?.close?.();
      }
      this.#slots.set(slot, next);
      // A policy may hold resources too (a draft model's executor).
      if (slot !== "executor") await (old?.impl as Partial<Executor> | undefined)?.close?.();
      this.#log(`[${slot}] now ${next.plugin.name}`);
    }
    this.#pending.clear();
  }

  #fallback<T>(slot: string): T {
    let impl = this.#defaults.get(slot);
    if (!impl) {
      const spec = this.registry.slot(slot);
      const plugin = this.registry.get(slot, spec.defaultPlugin);
      const options = parseOptions(plugin, {});
      const made = plugin.create(options as never, this.#context(slot, plugin.name));
      if (made instanceof Promise) {
        throw new Error(`default ${slot} plugin must create synchronously`);
      }
      impl = made;
      this.#defaults.set(slot, impl);
    }
    return impl as T;
  }

  #reportOnce(slot: string, error: unknown): void {
    const name = this.#slots.get(slot)?.plugin.name ?? "?";
    const key = `${slot}/${name}`;
    if (this.#reported.has(key)) return;
    this.#reported.add(key);
    const msg = error instanceof Error ? error.message : String(error);
    this.#log(
      `${slot} plugin "${name}" failed (${msg}); using "${
        this.registry.slot(slot).defaultPlugin
      }" for the steps it fails`,
    );
  }

  #timed<T>(slot: string, times: Record<string, number>, fn: () => T): T {
    const t0 = performance.now();
    try {
      return fn();
    } finally {
      const dt = (performance.now() - t0) / 1000;
      times[slot] = (times[slot] ?? 0) + dt;
    }
  }

  /** Scheduler, admission and batcher decide; a plugin that throws or breaks a rule is replaced by its slot's default for this step. */
  #decide(times: Record<string, number>, fallbacks: string[]): Plan {
    const view = this.#view;
    this.#renewViewQueues(); // engine bookkeeping: not part of the first policy's decision time
    let order: SchedulerOrder;
    try {
      order = this.#timed("scheduler", times, () => this.#impl<Scheduler>("scheduler").order(view));
      this.#checkOrder(order);
      this.#overBudget("scheduler", times);
    } catch (e) {
      this.#reportOnce("scheduler", e);
      fallbacks.push("scheduler");
      order = this.#fallback<Scheduler>("scheduler").order(view);
    }
    let admission = this.#impl<Admission>("admission");
    let admissionFailed = false;
    const tools: StepTools = {
      builder: (budget) =>
        new PlanBuilder(view, {
          tokens: Math.min(budget.tokens, this.limits.maxBatchTokens),
          seqs: Math.min(budget.seqs, this.limits.maxBatchSeqs),
        }, (req, state) => {
          const t0 = performance.now();
          try {
            return admission.admit(req, view, state);
          } catch (e) {
            this.#reportOnce("admission", e);
            if (!admissionFailed) fallbacks.push("admission");
            admissionFailed = true;
            admission = this.#fallback<Admission>("admission");
            return admission.admit(req, view, state);
          } finally {
            times.admission = (times.admission ?? 0) + (performance.now() - t0) / 1000;
          }
        }),
    };
    let plan: Plan;
    try {
      const before = times.admission ?? 0;
      plan = this.#timed(
        "batcher",
        times,
        () => this.#impl<Batcher>("batcher").plan(view, order, tools),
      );
      times.batcher -= (times.admission ?? 0) - before;
      this.#checkPlan(plan, "batcher");
      this.#overBudget("batcher", times);
    } catch (e) {
      this.#reportOnce("batcher", e);
      fallbacks.push("batcher");
      plan = this.#fallback<Batcher>("batcher").plan(view, order, tools);
      this.#checkPlan(plan, "batcher");
    }
    for (const slot in times) this.#recordDecision(slot, times[slot]);
    return plan;
  }

  #recordDecision(slot: string, seconds: number): void {
    const s = this.#stats.decisionTime[slot] ??= { total: 0, max: 0, steps: 0 };
    s.total += seconds;
    s.max = Math.max(s.max, seconds);
    s.steps++;
  }

  /**
   * Nothing runs and the policies start nothing, so nothing will ever free memory: let the
   * defaults decide; if they cannot start anything either, the head request can never run
   * and is refused with the reason.
   */
  #unstick(fallbacks: string[]): Plan {
    const view = this.#view;
    const admission = this.#fallback<Admission>("admission");
    const order = this.#fallback<Scheduler>("scheduler").order(view);
    const tools: StepTools = {
      builder: (budget) =>
        new PlanBuilder(view, {
          tokens: Math.min(budget.tokens, this.limits.maxBatchTokens),
          seqs: Math.min(budget.seqs, this.limits.maxBatchSeqs),
        }, (req, state) => admission.admit(req, view, state)),
    };
    const plan = this.#fallback<Batcher>("batcher").plan(view, order, tools);
    this.#checkPlan(plan, "batcher");
    if (plan.scheduled.length > 0 || plan.refused?.length) {
      fallbacks.push("stalled");
      return plan;
    }
    const head = order.waiting[0];
    const need = view.blocksNeeded(head, Math.min(head.numTokens, this.limits.maxBatchTokens));
    return {
      scheduled: [],
      preempted: [],
      refused: [{
        id: head.id,
        reason:
          `it can never start: it needs ${need} KV blocks and the pool has ${this.pool.freeBlocks} ` +
          `of ${this.pool.numBlocks} free with nothing else running`,
      }],
    };
  }

  #overBudget(slot: string, times: Record<string, number>): void {
    if (this.clock.virtual) return; // simulations stay deterministic
    const ms = (times[slot] ?? 0) * 1000;
    if (ms > this.#budgetMs) {
      throw new Error(`decision took ${ms.toFixed(1)} ms, over the ${this.#budgetMs} ms budget`);
    }
  }

  #checkOrder(order: SchedulerOrder): void {
    if (!order || !Array.isArray(order.running) || !Array.isArray(order.waiting)) {
      throw new Error("order() must return { running: RequestView[], waiting: RequestView[] }");
    }
    for (const r of order.preempt ?? []) {
      if (this.#byId.get(r.id)?.status !== "running") {
        throw new Error(`asked to preempt ${r.id}, which is not running`);
      }
    }
  }

  /** Every rule a plan must keep; throws a PluginError naming the plugin in `slot`. */
  #checkPlan(plan: Plan, slot: string): void {
    const name = this.#slots.get(slot)?.plugin.name ?? "?";
    const fail = (msg: string): never => {
      throw new PluginError(slot, name, msg);
    };
    if (!plan || !Array.isArray(plan.scheduled) || !Array.isArray(plan.preempted)) {
      fail("plan() must return { scheduled: [], preempted: [] }");
    }
    // Each request carries the number of the check that last saw it: 2m when this check saw
    // it preempted, 2m + 1 when scheduled or refused (no sets to allocate per step).
    const m = 2 * ++this.#planChecks;
    let free = this.pool.freeBlocks;
    for (let i = 0; i < plan.preempted.length; i++) {
      const id = plan.preempted[i];
      const r = this.#byId.get(id);
      if (!r || r.status !== "running") fail(`preempts ${id}, which is not running`);
      if (r!.planMark === m) fail(`preempts ${id} twice`);
      r!.planMark = m;
      free += this.#view.blocksFreedBy(r!);
    }
    const refused = plan.refused ?? [];
    for (let i = 0; i < refused.length; i++) {
      const { id, reason } = refused[i];
      const r = this.#byId.get(id);
      if (r?.status !== "waiting") fail(`refuses ${id}, which is not waiting`);
      if (typeof reason !== "string" || r!.planMark === m + 1) {
        fail(`refuses ${id} twice or without a reason`);
      }
      r!.planMark = m + 1;
    }
    let tokens = 0;
    const view = this.#view;
    // Filled by index, never shrunk: emptying an array frees its store, and this runs per step.
    const reqs = this.#checked.reqs, bs = this.pool.blockSize;
    let k = 0;
    this.#checked.plan = undefined;
    for (let i = 0; i < plan.scheduled.length; i++) {
      const c = plan.scheduled[i];
      const r = this.#byId.get(c.id);
      if (!r || r.status === "finished") fail(`schedules unknown request ${c.id}`);
      if (r!.planMark === m + 1) fail(`schedules request ${c.id} twice`);
      if (r!.planMark === m) fail(`both schedules and preempts ${c.id}`);
      r!.planMark = m + 1;
      const n = c.numTokens;
      if (!Number.isInteger(n) || n < 1) {
        fail(`gives ${c.id} ${n} tokens; a chunk is an integer of at least 1`);
      }
      const computed = r!.status === "waiting" ? view.cachedPrefixTokens(r!) : r!.numComputedTokens;
      const remaining = r!.numTokens - computed;
      if (n > remaining) fail(`gives ${c.id} ${n} tokens but it has ${remaining} to compute`);
      tokens += n;
      reqs[k++] = r!;
      // A running request's need directly (this runs per sequence per step); the view's otherwise.
      free -= r!.status === "running"
        ? Math.max(0, r!.blocksFor(n, bs) - r!.blockTable.length)
        : view.blocksNeeded(r!, n);
      if (free < 0) {
        fail(`needs more KV blocks than the pool has free (short by ${-free} at ${c.id})`);
      }
    }
    if (tokens > this.limits.maxBatchTokens) {
      fail(`plans ${tokens} tokens; the limit is ${this.limits.maxBatchTokens}`);
    }
    if (plan.scheduled.length > this.limits.maxBatchSeqs) {
      fail(`plans ${plan.scheduled.length} requests; the limit is ${this.limits.maxBatchSeqs}`);
    }
    this.#checked.plan = plan;
  }

  /**
   * RelayAttention: ask the kvcache plugin for this step's shared prompt (only when the
   * executor runs prefixed sequences). Running requests placed after another prompt lose
   * their KV's first part with it, so they are recomputed.
   */
  #chooseRelay(now: number): void {
    const kv = this.#impl<KvCachePolicy>("kvcache");
    let next: SharedPrompt | undefined;
    if (kv.relayPrompt && this.executor.relay) {
      try {
        next = kv.relayPrompt([...this.#running, ...this.#waiting]);
      } catch (e) {
        this.#reportOnce("kvcache", e);
      }
    }
    if (next?.id !== this.#relay?.id) {
      this.#relay = next && next.tokens.length > 0
        ? {
          id: next.id,
          tokens: next.tokens,
          root: blockHash(ROOT_HASH, next.tokens, 0, next.tokens.length),
        }
        : undefined;
    }
    if (!this.#relayPlaced) return; // no request ever sat after a shared prompt
    const root = this.#relay?.root;
    let stale = false;
    for (const r of this.#running) if (r.base > 0 && r.hashRoot !== root) stale = true;
    if (!stale) return;
    for (const r of [...this.#running]) {
      if (r.base > 0 && r.hashRoot !== root) this.#preempt(r, now);
    }
  }

  /** Where a request's blocks would start if admitted now: after the shared prompt it extends, or at 0. */
  #placeFor(r: Request): void {
    const relay = this.#relay;
    const p = r.promptTokens, t = relay?.tokens;
    let extends_ = !!t && p.length > t.length;
    for (let i = 0; extends_ && i < t!.length; i++) if (p[i] !== t![i]) extends_ = false;
    const base = extends_ ? t!.length : 0, root = extends_ ? relay!.root : ROOT_HASH;
    if (base === r.base && root === r.hashRoot) return;
    // Its cached blocks keep the hashes of where they were: register them before those change.
    if (r.blockHashes.length > 0) this.pool.flushGroup(r.blockHashes[0]);
    if (extends_) {
      this.#dropSwap(r); // its swapped KV starts at 0, not after the shared prompt
      this.#relayPlaced = true;
    }
    r.setBase(base, root);
  }

  /** Preempt, admit, allocate; returns the executor batch. */
  #apply(plan: Plan): [Batch, Request[]] {
    const now = this.#now;
    const name = this.#slots.get("batcher")!.plugin.name;
    // Indexed loops here and in the check: they run every step, mostly over empty lists.
    const refused = plan.refused ?? [];
    for (let i = 0; i < refused.length; i++) {
      const { id, reason } = refused[i];
      this.#end(this.#byId.get(id)!, "error", now, `refused by the ${name} batcher: ${reason}`);
    }
    for (let i = 0; i < plan.preempted.length; i++) {
      this.#preempt(this.#byId.get(plan.preempted[i])!, now, true);
    }
    // The batch's arrays are reused step after step (a batch is valid during its run only).
    const count = plan.scheduled.length;
    const sequences = this.#batchSeqs, reqs = this.#batchReqs;
    sequences.length = reqs.length = count;
    let numTokens = 0, numDecodes = 0;
    let admitted = 0, prefixed = false;
    const bs = this.pool.blockSize;
    const checked = this.#checked.plan === plan ? this.#checked.reqs : undefined;
    for (let i = 0; i < count; i++) {
      const c = plan.scheduled[i];
      const r = checked ? checked[i] : this.#byId.get(c.id)!;
      if (r.status === "waiting") {
        this.#admit(r, now);
        admitted++;
      }
      const n = Math.min(c.numTokens, r.numTokens - r.numComputedTokens);
      const need = r.blocksFor(n, bs);
      while (r.blockTable.length < need) {
        const b = this.pool.allocate(now);
        if (b < 0) throw new Error("KV pool exhausted after a checked plan: engine bug");
        r.blockTable.push(b);
      }
      r.lastScheduledStep = this.#step;
      if (r.firstScheduledTime < 0) r.firstScheduledTime = now;
      const start = r.numComputedTokens;
      reqs[i] = r;
      sequences[i] = r.batchSequence(start, n);
      if (r.base > 0) prefixed = true;
      numTokens += n;
      if (n === 1 && start === r.numTokens - 1 && start >= r.promptTokens.length) numDecodes++;
    }
    if (admitted > 0) {
      // The queue can hold thousands under overload. Admissions usually take its head, which
      // V8 removes without moving the rest; otherwise compact in place.
      const w = this.#waiting;
      let head = 0;
      while (head < w.length && w[head].status !== "waiting") head++;
      if (head === admitted) {
        for (let i = 0; i < head; i++) w.shift();
      } else {
        let k = 0;
        for (let i = 0; i < w.length; i++) if (w[i].status === "waiting") w[k++] = w[i];
        w.length = k;
      }
      this.#waitingChanged = true;
    }
    const batch: Batch = { step: this.#step, sequences, numTokens, numDecodes };
    if (prefixed) batch.relay = { id: this.#relay!.id, tokens: this.#relay!.tokens };
    return [batch, reqs];
  }

  #admit(r: Request, now: number): void {
    const bs = this.pool.blockSize;
    this.#placeFor(r);
    if (r.swapSlots.length > 0) {
      // Swapped out earlier: fresh blocks, filled from host memory before the step runs.
      for (const slot of r.swapSlots) {
        const block = this.pool.allocate(now);
        if (block < 0) throw new Error("KV pool exhausted after a checked plan: engine bug");
        r.blockTable.push(block);
        this.#swaps.into.push({ block, slot });
      }
      r.numComputedTokens = r.swappedTokens;
      r.registeredBlocks = 0; // registered again as the commit sees them full
      r.swapSlots = [];
      r.swappedTokens = 0;
      r.status = "running";
      this.#running.push(r);
      this.#runningChanged = true;
      return;
    }
    const found = this.#hitScratch;
    const max = Math.floor((r.numTokens - 1 - r.base) / bs);
    const hits = this.pool.prefixHits(r, max, found);
    for (let i = 0; i < hits; i++) {
      this.pool.acquire(found[i]);
      r.blockTable.push(found[i]);
    }
    // Blocks the host tier holds next: fresh device blocks, copied back before the step runs.
    // Taken first, so that the allocations' own evictions cannot push them out.
    const slots: number[] = [];
    const fromHost = this.#hostHits(r, hits, max, slots);
    for (const slot of slots) {
      const block = this.pool.allocate(now);
      if (block < 0) throw new Error("KV pool exhausted after a checked plan: engine bug");
      r.blockTable.push(block);
      this.#swaps.into.push({ block, slot });
    }
    const cached = (hits + fromHost) * bs;
    r.numComputedTokens = r.base + cached;
    r.registeredBlocks = hits; // the copied-back blocks register as the commit sees them full
    if (r.cachedTokens < 0) {
      r.cachedTokens = Math.min(cached, r.promptTokens.length);
      this.#stats.promptTokens += r.promptTokens.length;
    }
    this.#stats.prefixHitTokens += cached;
    this.#stats.hostHitTokens += fromHost * bs;
    r.status = "running";
    this.#running.push(r);
    this.#runningChanged = true;
  }

  /**
   * Give back a running request's blocks and queue it again at the head. With `maySwap` (a
   * plan's preemption) and swap preemption on, its KV goes to host memory when there is
   * room; otherwise it will be recomputed.
   */
  #preempt(r: Request, now: number, maySwap = false): void {
    this.#stats.preemptions++;
    const n = r.blockTable.length;
    if (
      maySwap && this.#preemption === "swap" && this.executor.swap && r.base === 0 && n > 0 &&
      n <= this.#swapFree.length
    ) {
      for (const block of r.blockTable) {
        const slot = this.#swapFree.pop()!;
        this.#swaps.out.push({ block, slot });
        r.swapSlots.push(slot);
      }
      r.swappedTokens = r.numComputedTokens;
      this.#swaps.outReqs.push(r);
      this.#stats.swapOuts++;
    } else {
      this.#stats.recomputedTokens += r.numComputedTokens;
    }
    this.#releaseBlocks(r, now);
    r.numComputedTokens = 0;
    r.registeredBlocks = 0;
    r.numPreemptions++;
    r.status = "waiting";
    const i = this.#running.indexOf(r);
    if (i >= 0) this.#running.splice(i, 1);
    this.#waiting.unshift(r);
    this.#waitingChanged = this.#runningChanged = true;
  }

  #releaseBlocks(r: Request, now: number): void {
    // Tail first, so the least-recently-freed order evicts a prefix's end before its start.
    for (let i = r.blockTable.length - 1; i >= 0; i--) this.pool.release(r.blockTable[i], now, r);
    r.blockTable = [];
    this.pool.leave(r);
  }

  #commit(batch: Batch, reqs: Request[], out: StepOutput, now: number): void {
    // Runs once per sequence per step: everything loop-invariant is read once.
    const pool = this.pool, bs = pool.blockSize, caching = pool.policy.prefixCaching;
    const tok = this.model.tokenizer;
    const eos = this.model.config.eosTokenIds, vocab = this.model.config.vocabSize;
    const eos0 = eos.length > 0 ? eos[0] : -1;
    const maxLen = this.limits.maxModelLen;
    const detokenize = this.#detokenize, onGap = this.#onTokenGap;
    const seqs = batch.sequences, tokens = out.tokens, stats = this.#stats;
    // Equal gaps in a row go out as one call (a decode step gives most requests the same one).
    let gapRun = 0, gapCount = 0;
    /** Append one sampled token to a running request; false when it ended the request. */
    const emit = (r: Request, token: number, logprob: TokenLogprob | undefined): boolean => {
      // (t | 0) === t: an integer in int32 range, and never a string or NaN.
      if ((token | 0) !== token || token < 0 || token >= vocab) {
        this.#end(r, "error", now, `executor returned token ${token}, outside the vocabulary`);
        return false;
      }
      r.appendToken(token);
      stats.generationTokens++;
      if (r.firstTokenTime < 0) r.firstTokenTime = now;
      else {
        const gap = now - r.lastTokenTime;
        if (gap > r.maxTokenGap) r.maxTokenGap = gap;
        if (gap === gapRun && gapCount > 0) gapCount++;
        else {
          if (gapCount > 0) onGap?.(gapRun, gapCount);
          gapRun = gap;
          gapCount = 1;
        }
      }
      r.lastTokenTime = now;
      const sampling = r.sampling;
      const isEos = !sampling.ignoreEos &&
        (token === eos0 || (eos.length > 1 && eos.includes(token)));
      const isStopId = sampling.stopTokenIds.length > 0 && sampling.stopTokenIds.includes(token);
      let text = "";
      let stopped = false;
      if (detokenize || sampling.stop.length > 0) {
        ({ text, stopped } = r.detokenize(tok, isEos || isStopId));
      }
      if (r.stream) {
        r.listener({ type: "token", id: r.id, token, text, logprob, time: now });
      } else if (text) r.deferText(text);
      if (isEos || isStopId || stopped) this.#end(r, "stop", now);
      else if (r.outputTokens.length >= sampling.maxTokens || r.numTokens >= maxLen) {
        this.#end(r, "length", now);
      } else return true;
      return false;
    };
    const register = (r: Request) => {
      const full = Math.floor((r.numComputedTokens - r.base) / bs);
      if (full > r.registeredBlocks) {
        if (caching) {
          for (let k = r.registeredBlocks; k < full; k++) pool.commitBlock(r, k, r.blockTable[k]);
        }
        r.registeredBlocks = full;
      }
    };
    for (let i = 0; i < seqs.length; i++) {
      const s = seqs[i];
      const r = reqs[i];
      if (r.status !== "running") continue; // aborted while the step ran
      if (s.drafts !== undefined) {
        this.#commitDrafts(r, out.verified?.[i], emit, register, now);
        continue;
      }
      r.numComputedTokens += s.tokens.length;
      register(r);
      if (!s.sample) continue;
      emit(r, tokens[i], out.logprobs?.[i]);
    }
    if (gapCount > 0) onGap?.(gapRun, gapCount);
    if (this.#verified.length > 0) {
      const results = this.#verified;
      this.#verified = [];
      const spec = this.#slots.get("speculation")?.impl as Speculator | undefined;
      try {
        spec?.onVerified?.(results, now);
      } catch (e) {
        this.#reportOnce("speculation", new Error(`onVerified threw: ${(e as Error).message}`));
      }
    }
  }

  /**
   * Commit a verified draft: keep the longest prefix of the draft that matches the tokens
   * the target sampled, emit those tokens and the target's next one (stopping where the
   * request ends), and give back the blocks that only rejected positions used.
   */
  #commitDrafts(
    r: Request,
    verified: ArrayLike<number> | undefined,
    emit: (r: Request, token: number, logprob: undefined) => boolean,
    register: (r: Request) => void,
    now: number,
  ): void {
    const drafts = r.drafts!;
    const k = drafts.length;
    if (!verified || verified.length < k + 1) {
      this.#end(r, "error", now, `executor verified ${verified?.length ?? 0} of ${k + 1} tokens`);
      return;
    }
    let accepted = 0;
    while (accepted < k && drafts[accepted] === verified[accepted]) accepted++;
    this.#verified.push({ id: r.id, proposed: k, accepted });
    this.#stats.draftTokens += k;
    this.#stats.acceptedDraftTokens += accepted;
    // The fed token's KV and that of the accepted drafts are now computed.
    r.numComputedTokens += 1 + accepted;
    for (let j = 0; j <= accepted; j++) if (!emit(r, verified[j], undefined)) return;
    register(r);
    const keep = r.blocksFor(1, this.pool.blockSize);
    while (r.blockTable.length > keep) this.pool.release(r.blockTable.pop()!, now, r);
  }

  /**
   * Ask the speculator for drafts of this step's decodes and feed them (speculative
   * decoding); returns the simulated seconds the drafting took (0 on a wall clock).
   */
  #speculate(batch: Batch, reqs: Request[], decisionTime: Record<string, number>): number {
    const spec = this.#slots.get("speculation")?.impl as Speculator | undefined;
    if (!spec?.propose || !this.executor.verify) return 0;
    const decodes: Request[] = [], at: number[] = [];
    const seqs = batch.sequences;
    for (let i = 0; i < seqs.length; i++) {
      const s = seqs[i], r = reqs[i];
      if (
        s.tokens.length === 1 && s.sample && r.base === 0 && r.sampling.logprobs < 0 &&
        r.outputTokens.length > 0
      ) {
        decodes.push(r);
        at.push(i);
      }
    }
    if (decodes.length === 0) return 0;
    const t0 = performance.now();
    let proposal: Proposal;
    try {
      proposal = spec.propose(this.#view, decodes);
    } catch (e) {
      this.#reportOnce("speculation", e);
      return 0;
    }
    decisionTime.speculation = (performance.now() - t0) / 1000;
    this.#recordDecision("speculation", decisionTime.speculation);
    const bs = this.pool.blockSize, vocab = this.model.config.vocabSize;
    let budget = this.limits.maxBatchTokens - batch.numTokens;
    for (let j = 0; j < decodes.length && budget > 0; j++) {
      const d = proposal.drafts[j];
      if (!d || d.length === 0) continue;
      const r = decodes[j];
      // A draft never runs past the request's limits: the last kept token is the target's.
      let k = Math.min(
        d.length,
        budget,
        r.sampling.maxTokens - r.outputTokens.length - 1,
        this.limits.maxModelLen - r.numTokens - 1,
      );
      while (k > 0 && r.blocksFor(1 + k, bs) - r.blockTable.length > this.pool.freeBlocks) k--;
      if (k <= 0) continue;
      const draft = d.length === k ? d : d.slice(0, k);
      if (draft.some((t) => (t | 0) !== t || t < 0 || t >= vocab)) {
        this.#reportOnce("speculation", new Error("proposed a token outside the vocabulary"));
        continue;
      }
      const need = r.blocksFor(1 + k, bs);
      while (r.blockTable.length < need) {
        const b = this.pool.allocate(this.#now);
        if (b < 0) throw new Error("KV pool exhausted after checking free blocks: engine bug");
        r.blockTable.push(b);
      }
      r.draft(draft);
      batch.numTokens += k;
      budget -= k;
    }
    const seconds = proposal.seconds ?? 0;
    if (!this.clock.virtual || !(seconds > 0)) return 0;
    this.clock.advance(seconds);
    return seconds;
  }

  /**
   * Copy this step's swapped KV to and from host memory before the batch runs (called only
   * when there is some). If the executor fails, the requests swapped out are recomputed
   * later and the batch fails.
   */
  async #runSwaps(batch: Batch): Promise<{ readonly ok: boolean; readonly seconds: number }> {
    const { out, into, outReqs } = this.#swaps;
    this.#swaps = { out: [], into: [], outReqs: [] };
    const t0 = performance.now();
    let ok = true, seconds = 0;
    try {
      const t = await this.executor.swap!(out, into);
      seconds = typeof t === "number" ? t : (performance.now() - t0) / 1000;
    } catch (e) {
      ok = false;
      for (const r of outReqs) this.#dropSwap(r);
      this.#failBatch(batch, new Error(`swap failed: ${(e as Error).message}`));
    }
    for (const c of into) {
      if (this.#host?.owns(c.slot)) this.#host.release(c.slot);
      else this.#swapFree.push(c.slot);
    }
    if (this.clock.virtual) this.clock.advance(seconds);
    return { ok, seconds };
  }

  /** Forget a request's swapped-out KV (recomputed if it runs again); frees its host slots. */
  #dropSwap(r: Request, ending = false): void {
    if (r.swapSlots.length === 0) return;
    if (!ending) this.#stats.recomputedTokens += r.swappedTokens;
    for (const slot of r.swapSlots) this.#swapFree.push(slot);
    r.swapSlots = [];
    r.swappedTokens = 0;
  }

  #failBatch(batch: Batch, e: unknown): void {
    const msg = `executor failed: ${e instanceof Error ? e.message : String(e)}`;
    this.#log(msg);
    const now = this.clock.now();
    for (const s of batch.sequences) {
      const r = this.#byId.get(s.id);
      if (r && r.status !== "finished") this.#end(r, "error", now, msg);
    }
  }

  #end(r: Request, reason: FinishReason, now: number, error?: string): void {
    if (r.status === "running") {
      const i = this.#running.indexOf(r);
      if (i >= 0) this.#running.splice(i, 1);
      this.#runningChanged = true;
    } else if (r.status === "waiting") {
      const i = this.#waiting.indexOf(r);
      if (i >= 0) this.#waiting.splice(i, 1);
      this.#waitingChanged = true;
    }
    this.#releaseBlocks(r, now);
    this.#dropSwap(r, true);
    this.#byId.delete(r.id);
    this.#stats.finished[reason]++;
    r.finish(reason, now, reason === "abort" || reason === "error" ? "" : r.flushHeld(), error);
    this.#hook("onFinish", (h) => h.onFinish?.(r, reason, now));
  }

  #hook(name: string, call: (h: PolicyHooks) => void): void {
    for (const slot of DECIDING_SLOTS) {
      const a = this.#slots.get(slot);
      if (!a) continue;
      try {
        call(a.impl as PolicyHooks);
      } catch (e) {
        this.#reportOnce(slot, new Error(`${name} threw: ${(e as Error).message}`));
      }
    }
  }

  #makeView(): EngineView {
    const pool = this.pool;
    const step = () => this.#step;
    const byId = this.#byId;
    const now = () => this.#now;
    const waiting = (): readonly Request[] => {
      this.#renewViewQueues();
      return this.#viewWaiting;
    };
    const running = (): readonly Request[] => {
      this.#renewViewQueues();
      return this.#viewRunning;
    };
    const place = (r: Request) => this.#placeFor(r);
    const kv: KvView = {
      get blockSize() {
        return pool.blockSize;
      },
      get totalBlocks() {
        return pool.numBlocks;
      },
      get freeBlocks() {
        return pool.freeBlocks;
      },
      get usage() {
        return pool.usedBlocks / pool.numBlocks;
      },
      pinned: (programId) => pool.policy.pinned?.(programId) ?? false,
    };
    /** Fill `r.probeHits` and `r.probeFreeHits` for a waiting request, once per step. */
    const probe = (r: Request): void => {
      if (r.probeStep === step()) return;
      let hits = 0, freeHits = 0, hostHits = 0;
      place(r);
      if (r.swappedTokens === 0) {
        const found = this.#hitScratch;
        const max = Math.floor((r.numTokens - 1 - r.base) / pool.blockSize);
        hits = pool.prefixHits(r, max, found);
        for (let i = 0; i < hits; i++) if (pool.refCount(found[i]) === 0) freeHits++;
        hostHits = this.#hostHits(r, hits, max, undefined);
      }
      r.probeStep = step();
      r.probeHits = hits;
      r.probeFreeHits = freeHits;
      r.probeHostHits = hostHits;
    };
    const asRequest = (v: RequestView): Request => {
      // Policies hand back the views they were given: those are the engine's requests.
      if (v instanceof Request && v.status !== "finished") return v;
      const r = byId.get(v.id);
      if (!r) throw new Error(`unknown request ${v.id}`);
      return r;
    };
    return {
      get now() {
        return now();
      },
      get step() {
        return step();
      },
      get waiting() {
        return waiting();
      },
      get running() {
        return running();
      },
      kv,
      limits: this.limits,
      cachedPrefixTokens(v) {
        const r = asRequest(v);
        if (r.status !== "waiting") return r.numComputedTokens;
        probe(r); // places the request first
        if (r.swappedTokens > 0) return r.swappedTokens;
        return r.base + (r.probeHits + r.probeHostHits) * pool.blockSize;
      },
      blocksNeeded(v, n) {
        const r = asRequest(v);
        const bs = pool.blockSize;
        if (r.status !== "waiting") {
          return Math.max(0, r.blocksFor(n, bs) - r.numBlocks);
        }
        probe(r);
        if (r.swappedTokens > 0) return Math.ceil((r.swappedTokens + n) / bs);
        // Device hits already hold blocks (taking a free cached one still costs it); host
        // hits need fresh ones like any token.
        const hits = r.probeHits + r.probeHostHits;
        return Math.ceil((hits * bs + n) / bs) - r.probeHits + r.probeFreeHits;
      },
      blocksFreedBy(v) {
        const r = asRequest(v);
        let n = 0;
        for (const b of r.blockTable) if (pool.refCount(b) === 1) n++;
        return n;
      },
    };
  }

  // ======== simulation fast path (kernels/sim, core/simulation.ts; docs/SIMULATOR.md) ========

  /**
   * Run up to `maxSteps` iterations that repeat a decode-only plan, without asking the
   * policies again: every running request decodes one token per step, in running order.
   * The results (tokens, times, blocks, stats, step reports) are those of calling
   * {@link step} as often, provided the policies would have planned exactly that. The
   * simulation driver calls it only after a step whose plan was decode-all, and only with
   * policies that keep no per-step state. Stops before a step that would start at or after
   * `until` (the next arrival), before a step that needs more KV blocks than are free
   * (the policies would preempt), and after a step in which a request finished.
   * Preconditions (else it returns 0 and does nothing): a virtual clock, no pending swap,
   * nothing waiting (see `waiting`), detokenisation off, every running request decoding without stop
   * strings. With `waiting` true, requests may wait: the caller vouches that the policies,
   * having admitted none in a decode-only step, admit none until a request finishes or
   * arrives (true of memory- and budget-based admission: free blocks only shrink while
   * decoding). Decision time is not measured on these steps. Returns the steps run.
   */
  async repeatDecodeSteps(
    maxSteps: number,
    until: number = Infinity,
    waiting = false,
  ): Promise<number> {
    const running = this.#running.slice();
    const n = running.length;
    const spec = this.#slots.get("speculation")?.impl as Speculator | undefined;
    if (
      (spec?.propose && this.executor.verify) ||
      !this.clock.virtual || this.#detokenize || this.#pending.size > 0 ||
      (this.#waiting.length > 0 && !waiting) || n === 0 || n > this.limits.maxBatchSeqs ||
      n > this.limits.maxBatchTokens
    ) return 0;
    for (let i = 0; i < n; i++) {
      const r = running[i];
      if (
        r.numComputedTokens !== r.numTokens - 1 || r.outputTokens.length === 0 ||
        r.sampling.stop.length > 0 || r.base > 0
      ) return 0;
    }
    const sequences: BatchSequence[] = new Array(n);
    const bs = this.pool.blockSize;
    const batch: Batch = { step: 0, sequences, numTokens: n, numDecodes: n };
    let done = 0;
    while (done < maxSteps && this.clock.now() < until) {
      let need = 0;
      for (const r of running) if (r.blockTable.length * bs < r.numComputedTokens + 1) need++;
      if (need > this.pool.freeBlocks) break;
      this.#step++;
      const start = this.clock.now();
      this.#now = start;
      for (let i = 0; i < n; i++) {
        const r = running[i];
        if (r.blockTable.length * bs < r.numComputedTokens + 1) {
          const b = this.pool.allocate(start);
          if (b < 0) throw new Error("KV pool exhausted after a checked step: engine bug");
          r.blockTable.push(b);
        }
        r.lastScheduledStep = this.#step;
        sequences[i] = r.batchSequence(r.numComputedTokens, 1);
      }
      batch.step = this.#step;
      const { ok } = await this.#execute(batch, running, start, {}, [], 0);
      done++;
      if (this.#running.length !== n || !ok) break;
    }
    return done;
  }
}

function isPromise<T>(x: T | Promise<T>): x is Promise<T> {
  return typeof (x as { then?: unknown }).then === "function";
}

/** What a step without swap copies reports (shared: the step loop allocates nothing for it). */
const NO_SWAPS: { readonly ok: boolean; readonly seconds: number } = Object.freeze({
  ok: true,
  seconds: 0,
});

/** Host swap space: what 4 GiB holds of f16 KV (vLLM's default `swap_space`). */
function defaultSwapBlocks(model: Model, blockSize: number): number {
  const c = model.config;
  const bytesPerBlock = blockSize * 2 * c.nLayers * c.nKvHeads * c.headDim * 2;
  return Math.floor(4 * 2 ** 30 / bytesPerBlock);
}

/** 16,384 tokens of KV, or what 512 MiB of f32 KV holds, but at least two full contexts. */
function defaultNumBlocks(model: Model, blockSize: number, maxModelLen?: number): number {
  const c = model.config;
  const bytesPerToken = 2 * c.nLayers * c.nKvHeads * c.headDim * 4;
  const tokens = Math.max(
    2 * (maxModelLen ?? c.maxSeqLen),
    Math.min(16384, Math.floor(2 ** 29 / bytesPerToken)),
  );
  return Math.ceil(tokens / blockSize);
}
