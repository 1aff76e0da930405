/**
 * The event-driven simulation driver: runs the real {@link Engine} on a
 * {@link VirtualClock} with a simulated executor, feeding it a workload either open-loop
 * (each request at its arrival time) or closed-loop (N clients, each sending its next
 * request when the previous one ends, after a think time, retrying requests that missed
 * the SLA). Between events, decode-only steps are computed in one go when that gives the
 * same result as stepping one by one (docs/SIMULATOR.md, "Fast-forward").
 *
 * Everything it returns is simulated time, so the same seed gives the same result; the
 * plugins' wall-clock decision time is returned apart.
 *
 * @module
 */

import { VirtualClock } from "./clock.ts";
import { Engine, type EngineOptions, type StepReport } from "./engine.ts";
import { UsageError } from "./errors.ts";
import { recordRequest, type RequestRecord, succeeded } from "./metrics/request_metrics.ts";
import { meetsSlo, type ServeSummary, type Slo, summarize } from "./metrics/summary.ts";
import { NumberList, RunLengthList } from "./metrics/stats.ts";
import type { TokenIds, TurnInfo } from "./types.ts";
import {
  type ProgramRecord,
  type ProgramSummary,
  summarizePrograms,
} from "./metrics/program_metrics.ts";

/** One request of a simulated workload. */
export interface SimRequest {
  /** Unique id within the workload. */
  id: string;
  /** Arrival time in seconds from the start (ignored by closed-loop clients). */
  arrivalTime: number;
  /** Prompt length in tokens. */
  promptLength: number;
  /** True output length in tokens, hidden from the policies. */
  outputLength: number;
  /** The generation cap the engine sees (a realistic limit, never the true length). */
  maxTokens?: number;
  /** Explicit prompt token ids; synthetic ones otherwise. */
  promptTokens?: number[];
  /** Multi-turn program or user. */
  programId?: string;
  /**
   * Makes this a follow-up turn of its program: it is sent this many seconds (the tool's run
   * time) after the program's previous request in the workload ends, and its `arrivalTime`
   * is ignored. Its prompt is the previous turn's prompt and output (so cached KV can serve
   * it) followed by fresh tokens (the tool's output and new instructions) up to
   * `promptLength`. If a turn fails, the program's later turns are not sent.
   */
  toolTime?: number;
  /** What the agent tells the engine of this turn (last turn, tool called). */
  turn?: TurnInfo;
  /** The first this-many prompt tokens are one system prompt shared by every request that sets it. */
  sharedPrefix?: number;
}

/** How load is offered. */
export type LoadSpec =
  | { kind: "open" }
  | {
    kind: "closed";
    /** Concurrent clients. */
    clients: number;
    /** Seconds a client waits after a response before sending its next request. */
    thinkTime?: number;
    /** Extra attempts of a request that misses the SLA (default 0). */
    retries?: number;
    /** The SLA a response must meet, else it is retried. */
    sla?: Slo;
  };

/** Scheduler and batcher plugins known to decide the same way on every decode-only step. */
export const FAST_FORWARD_SAFE: Readonly<Record<string, readonly string[]>> = {
  scheduler: ["fcfs", "priority"],
  batcher: ["vllm", "prefill-first"],
  // Consulted only when requests wait: admission that depends on free memory alone.
  admission: ["watermark"],
};

/** Options of {@link simulate}. */
export interface SimulationOptions {
  /** Engine options; the clock is a fresh virtual one and detokenisation is off. */
  engine: Omit<EngineOptions, "clock" | "detokenize">;
  /** The workload. */
  requests: readonly SimRequest[];
  /** Open loop (default) or closed-loop clients. */
  load?: LoadSpec;
  /** Seed of the synthetic prompt ids (default: the engine seed). */
  seed?: number;
  /** SLOs for goodput, milliseconds. */
  slo?: Slo;
  /** Percentiles to report (default 50, 90, 99). */
  percentiles?: number[];
  /** Compute runs of identical decode steps at once (default true). */
  fastForward?: boolean;
  /** Plugins trusted for fast-forward (default {@link FAST_FORWARD_SAFE}). */
  fastForwardSafe?: Readonly<Record<string, readonly string[]>>;
  /** Stop at this simulated time, aborting what is left (default: run to the end). */
  maxTime?: number;
  /** Called after each finished request. */
  onProgress?: (finished: number, total: number) => void;
  /** Called after each step (fidelity checks, custom metrics). */
  onStep?: (report: StepReport, engine: Engine) => void;
  /** Points kept of the KV-usage time series (default 200). */
  kvPoints?: number;
}

/** Engine counters at the end of a run (simulated quantities only). */
export interface SimEngineStats {
  /** Iterations. */
  steps: number;
  /** Iterations computed by fast-forward. */
  fastForwardedSteps: number;
  /** Preemptions (recompute and swap). */
  preemptions: number;
  /** Preemptions that swapped the KV to host memory (`preemption: "swap"`). */
  swapOuts: number;
  /** Cached KV blocks evicted. */
  evictions: number;
  /** Tokens computed again after preemption. */
  recomputedTokens: number;
  /** Prompt tokens served from the prefix cache. */
  prefixHitTokens: number;
  /** Of them, tokens copied back from the host KV cache. */
  hostHitTokens: number;
  /** Evicted blocks copied to the host KV cache. */
  hostStores: number;
  /** Draft tokens verified (speculative decoding). */
  draftTokens: number;
  /** Of them, accepted. */
  acceptedDraftTokens: number;
  /** KV pool size, blocks. */
  numBlocks: number;
  /** Tokens per block. */
  blockSize: number;
  /** Mean step duration, seconds. */
  meanStepTime: number;
  /** Time-weighted mean KV usage, 0..1. */
  meanKvUsage: number;
  /** Largest KV usage seen after a step. */
  peakKvUsage: number;
}

/** What a simulation returns. */
export interface SimulationResult {
  /** Metrics with `vllm bench serve` semantics and the papers' extras. */
  summary: ServeSummary;
  /** Every finished request (attempts of closed-loop retries included). */
  records: RequestRecord[];
  /** Engine counters. */
  engine: SimEngineStats;
  /** KV usage over simulated time: [seconds, fraction used]. */
  kvUsage: [number, number][];
  /** Closed loop: requests that never met the SLA within their retries. */
  gaveUp: number;
  /** Multi-turn programs (workloads that set `programId`): job completion times. */
  programs?: ProgramSummary;
  /** Wall-clock seconds each slot's plugin spent deciding (not deterministic; keep out of JSON). */
  decisionTime: Record<string, { totalSeconds: number; maxSeconds: number; steps: number }>;
}

/**
 * Shrink prompt and output proportionally to fit `maxLen` tokens, each at least 1 (the
 * Sarathi-Serve trace loader's rule).
 */
export function clipToContext(prompt: number, output: number, maxLen: number): [number, number] {
  if (prompt + output <= maxLen) return [prompt, output];
  const f = maxLen / (prompt + output);
  const d = Math.max(1, Math.floor(output * f));
  const p = Math.max(1, Math.min(maxLen - d, Math.floor(prompt * f)));
  return [p, d];
}

/**
 * Synthetic prompt ids for request number `index`: distinct across requests (no accidental
 * prefix hits), cheap, the same for the same seed.
 */
export function syntheticPromptTokens(
  seed: number,
  index: number,
  length: number,
  vocabSize: number,
): number[] {
  return Array.from(fillSyntheticTokens(new Int32Array(length), 0, seed, index, vocabSize));
}

/** Fill `out[from ..]` with the ids {@link syntheticPromptTokens} gives; returns `out`. */
function fillSyntheticTokens(
  out: Int32Array,
  from: number,
  seed: number,
  index: number,
  vocabSize: number,
): Int32Array {
  const span = Math.max(1, vocabSize - 16); // stay above the special ids
  let h = (Math.imul(index + 1, 0x9e3779b1) ^ Math.imul(seed + 7, 0x85ebca6b)) >>> 0;
  for (let i = from; i < out.length; i++) {
    h = (Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    out[i] = 16 + (h % span);
  }
  return out;
}

/** Run a workload through the engine on a virtual clock. */
export async function simulate(o: SimulationOptions): Promise<SimulationResult> {
  const load = o.load ?? { kind: "open" };
  if (o.requests.length === 0) throw new UsageError("the workload has no requests", "requests");
  if (load.kind === "closed" && !(Number.isInteger(load.clients) && load.clients >= 1)) {
    throw new UsageError(`--clients must be an integer >= 1, got ${load.clients}`, "clients");
  }
  const clock = new VirtualClock();
  const itl = new RunLengthList();
  const engine = await Engine.create({
    ...o.engine,
    clock,
    detokenize: false,
    onTokenGap: (gap, count) => itl.push(gap, count),
  });
  if (!engine.executor.simulated) {
    await engine.close();
    throw new UsageError("simulation needs a simulated executor (--executor sim)", "executor");
  }
  try {
    return await drive(engine, clock, load, o, itl);
  } finally {
    await engine.close();
  }
}

async function drive(
  engine: Engine,
  clock: VirtualClock,
  load: LoadSpec,
  o: SimulationOptions,
  itl: RunLengthList,
): Promise<SimulationResult> {
  const seed = o.seed ?? engine.seed;
  const vocab = engine.model.config.vocabSize;
  const maxLen = engine.limits.maxModelLen;
  const poolTokens = engine.pool.numBlocks * engine.pool.blockSize;
  const records: RequestRecord[] = [];
  let total = o.requests.length;
  let finished = 0;
  let gaveUp = 0;

  // KV usage and step statistics from step reports.
  const kvT = new NumberList(), kvU = new NumberList();
  let stepTime = 0, steps = 0, ffSteps = 0, kvArea = 0, peakKv = 0;
  engine.onStep((rep) => {
    steps++;
    stepTime += rep.duration;
    const u = engine.pool.usedBlocks / engine.pool.numBlocks;
    kvArea += u * rep.duration;
    if (u > peakKv) peakKv = u;
    kvT.push(rep.start + rep.duration);
    kvU.push(u);
    o.onStep?.(rep, engine);
  });

  const safe = o.fastForwardSafe ?? FAST_FORWARD_SAFE;
  const names = new Map(engine.plugins().map((p) => [p.slot, p.name]));
  const ffAllowed = (o.fastForward ?? true) &&
    ["scheduler", "batcher"].every((s) => (safe[s] ?? []).includes(names.get(s) ?? ""));
  const ffWaiting = (safe.admission ?? []).includes(names.get("admission") ?? "");

  // Closed loop state.
  const queue: { req: SimRequest; index: number; attempt: number; since: number }[] = [];
  let qHead = 0;
  const ready: number[] = []; // times at which a client becomes free (non-decreasing)
  let readyHead = 0;
  const closed = load.kind === "closed" ? load : undefined;

  // Multi-turn programs: each follow-up waits for its predecessor to end.
  const turns = followUps(o.requests);
  if (turns.next.size > 0 && closed) {
    throw new UsageError("follow-up turns (toolTime) need open-loop load", "load");
  }
  /** Follow-ups due, by time: [time, index into o.requests]. */
  const due: [number, number][] = [];
  const context = new Map<SimRequest, Int32Array>(); // a follow-up's prompt so far
  const programs = new Map<string, ProgramRecord>();
  const turnsOf = new Map<string, number>();
  for (const r of o.requests) {
    if (r.programId !== undefined) turnsOf.set(r.programId, (turnsOf.get(r.programId) ?? 0) + 1);
  }
  const programOf = (req: SimRequest, at: number): ProgramRecord | undefined => {
    const pid = req.programId;
    if (pid === undefined) return undefined;
    let p = programs.get(pid);
    if (!p) {
      p = { id: pid, arrival: at, finish: at, turns: 0, complete: false };
      programs.set(pid, p);
    }
    return p;
  };
  const addDue = (t: number, index: number) => {
    let i = due.length;
    while (i > 0 && due[i - 1][0] > t) i--;
    due.splice(i, 0, [t, index]);
  };

  // One synthetic system prompt (its longest use), shared by the requests that ask for it.
  // Prompts are Int32Arrays: they live outside the heap the garbage collector copies.
  let system: Int32Array = new Int32Array(0);
  const submit = (req: SimRequest, index: number, attempt: number, at: number) => {
    let p = req.promptLength, d = req.outputLength;
    if (p + d > maxLen) [p, d] = clipToContext(p, d, maxLen);
    if (p + 1 > poolTokens) p = poolTokens - 1;
    const shared = Math.min(req.sharedPrefix ?? 0, p - 1);
    const before = context.get(req);
    context.delete(req);
    let tokens: TokenIds;
    if (req.promptTokens && req.promptTokens.length === p) tokens = req.promptTokens;
    else if (before) {
      // The previous turn's prompt and output, then the tool's output.
      const ids = new Int32Array(p);
      const kept = Math.min(p, before.length);
      ids.set(before.subarray(0, kept));
      tokens = fillSyntheticTokens(ids, kept, seed, index, vocab);
    } else {
      if (system.length < shared) {
        system = fillSyntheticTokens(new Int32Array(shared), 0, seed, -1, vocab);
      }
      const ids = new Int32Array(p);
      for (let i = 0; i < shared; i++) ids[i] = system[i];
      tokens = fillSyntheticTokens(ids, shared, seed, index, vocab);
    }
    const maxTokens = Math.max(d, Math.min(req.maxTokens ?? d, maxLen - p));
    const id = attempt === 0 ? req.id : `${req.id}#${attempt}`;
    const successor = turns.next.get(index);
    const output: number[] = [];
    const program = programOf(req, at);
    const record = recordRequest(p, (rec) => {
      records.push(rec);
      finished++;
      let retried = false;
      if (closed) {
        const ok = closed.sla === undefined || meetsSlo(rec, closed.sla);
        retried = !ok && attempt < (closed.retries ?? 0);
        if (retried) queue.push({ req, index, attempt: attempt + 1, since: rec.finish });
        else if (!ok) gaveUp++;
        ready.push(rec.finish + (closed.thinkTime ?? 0));
      }
      if (program) {
        program.finish = Math.max(program.finish, rec.finish);
        if (succeeded(rec) && !retried) program.turns++;
      }
      if (successor !== undefined) {
        const nextReq = o.requests[successor];
        if (succeeded(rec)) {
          const ctx = new Int32Array(tokens.length + output.length);
          ctx.set(tokens);
          ctx.set(output, tokens.length);
          context.set(nextReq, ctx);
          addDue(rec.finish + nextReq.toolTime!, successor);
        } else {
          total -= turns.after(successor); // the agent stops: its later turns are never sent
        }
      }
      o.onProgress?.(finished, total);
    });
    engine.add(
      {
        id,
        promptTokens: tokens,
        arrivalTime: at,
        programId: req.programId,
        turn: req.turn,
        sampling: { maxTokens, temperature: 0 },
        hidden: { outputLength: d },
        // A turn with a follow-up streams, to learn its output ids.
        stream: successor !== undefined,
      },
      successor === undefined ? record : (ev) => {
        if (ev.type === "token") output.push(ev.token);
        record(ev);
      },
    );
  };

  const firstTurns = o.requests.filter((r) => r.toolTime === undefined);
  const sortedReqs = closed ? firstTurns : firstTurns.sort((a, b) => {
    const ta = Number.isFinite(a.arrivalTime) ? a.arrivalTime : 0;
    const tb = Number.isFinite(b.arrivalTime) ? b.arrivalTime : 0;
    return ta - tb;
  });
  const indexOf = new Map<SimRequest, number>();
  o.requests.forEach((r, i) => indexOf.set(r, i));
  let next = 0;
  if (closed) {
    for (let i = 0; i < sortedReqs.length; i++) {
      queue.push({ req: sortedReqs[i], index: i, attempt: 0, since: 0 });
    }
    for (let c = 0; c < closed.clients; c++) ready.push(0);
  }
  const arrivalOf = (r: SimRequest) => Number.isFinite(r.arrivalTime) ? r.arrivalTime : 0;
  const maxTime = o.maxTime ?? Infinity;

  /** Time of the next external event (arrival or client becoming ready), Infinity if none. */
  const nextEvent = (): number => {
    if (closed) {
      return readyHead < ready.length && qHead < queue.length ? ready[readyHead] : Infinity;
    }
    const t = next < sortedReqs.length ? arrivalOf(sortedReqs[next]) : Infinity;
    return due.length > 0 ? Math.min(t, due[0][0]) : t;
  };

  let stalled = 0;
  while (true) {
    const now = clock.now();
    if (now >= maxTime) break;
    if (closed) {
      while (readyHead < ready.length && ready[readyHead] <= now && qHead < queue.length) {
        const q = queue[qHead++];
        submit(q.req, q.index, q.attempt, Math.max(q.since, ready[readyHead++]));
      }
    } else {
      while (next < sortedReqs.length && arrivalOf(sortedReqs[next]) <= now) {
        const r = sortedReqs[next++];
        submit(r, indexOf.get(r)!, 0, arrivalOf(r));
      }
      while (due.length > 0 && due[0][0] <= now) {
        const [t, index] = due.shift()!;
        submit(o.requests[index], index, 0, t);
      }
    }
    if (!engine.hasWork) {
      const t = nextEvent();
      if (t === Infinity) break;
      clock.advanceTo(t);
      continue;
    }
    const rep = await engine.step();
    if (!rep || rep.numSeqs === 0) {
      // Nothing could be scheduled: wait for the next event, or give up on the head.
      const t = nextEvent();
      if (t !== Infinity) clock.advanceTo(t);
      else if (++stalled > 2) {
        const head = engine.waiting[0] ?? engine.running[0];
        if (head) engine.abort(head.id);
      }
      continue;
    }
    stalled = 0;
    if (
      ffAllowed && rep.numPreempted === 0 && rep.prefillTokens === 0 &&
      rep.numSeqs === engine.running.length && (ffWaiting || engine.waiting.length === 0)
    ) {
      ffSteps += await engine.repeatDecodeSteps(
        Infinity,
        Math.min(nextEvent(), maxTime),
        ffWaiting,
      );
    }
  }
  for (const r of [...engine.running, ...engine.waiting]) engine.abort(r.id);

  const duration = records.reduce((m, r) => Math.max(m, r.finish), 0);
  const summary = summarize(records, itl, {
    duration,
    percentiles: o.percentiles,
    slo: o.slo ?? closed?.sla,
  });
  const st = engine.stats;
  const decisionTime: SimulationResult["decisionTime"] = {};
  for (const [slot, d] of Object.entries(st.decisionTime)) {
    decisionTime[slot] = { totalSeconds: d.total, maxSeconds: d.max, steps: d.steps };
  }
  const end = clock.now();
  return {
    summary,
    programs: programs.size > 0
      ? summarizePrograms(
        [...programs.values()].map((p) => ({ ...p, complete: p.turns === turnsOf.get(p.id) })),
        duration,
        o.percentiles,
      )
      : undefined,
    records,
    engine: {
      steps,
      fastForwardedSteps: ffSteps,
      preemptions: st.preemptions,
      swapOuts: st.swapOuts,
      evictions: st.evictions,
      recomputedTokens: st.recomputedTokens,
      prefixHitTokens: st.prefixHitTokens,
      hostHitTokens: st.hostHitTokens,
      hostStores: st.hostStores,
      draftTokens: st.draftTokens,
      acceptedDraftTokens: st.acceptedDraftTokens,
      numBlocks: engine.pool.numBlocks,
      blockSize: engine.pool.blockSize,
      meanStepTime: steps > 0 ? stepTime / steps : 0,
      meanKvUsage: end > 0 ? kvArea / end : 0,
      peakKvUsage: peakKv,
    },
    kvUsage: downsample(kvT.view(), kvU.view(), o.kvPoints ?? 200),
    gaveUp,
    decisionTime,
  };
}

/**
 * Each follow-up turn's predecessor: the previous request of the same program in the
 * workload. `next` maps a request's index to its follow-up's; `after(i)` counts request
 * `i` and the follow-ups after it.
 */
function followUps(requests: readonly SimRequest[]): {
  next: Map<number, number>;
  after(index: number): number;
} {
  const next = new Map<number, number>();
  const last = new Map<string, number>();
  requests.forEach((r, i) => {
    if (r.toolTime !== undefined) {
      if (!(Number.isFinite(r.toolTime) && r.toolTime >= 0)) {
        throw new UsageError(
          `request ${r.id}: toolTime must be a number of seconds >= 0, got ${r.toolTime}`,
          "toolTime",
        );
      }
      const prev = r.programId === undefined ? undefined : last.get(r.programId);
      if (prev === undefined) {
        throw new UsageError(
          `request ${r.id} has a toolTime but no earlier request of its program ` +
            `(${r.programId ?? "no programId"}) to follow`,
          "toolTime",
        );
      }
      next.set(prev, i);
    }
    if (r.programId !== undefined) last.set(r.programId, i);
  });
  const after = (index: number): number => {
    let n = 0;
    for (let i: number | undefined = index; i !== undefined; i = next.get(i)) n++;
    return n;
  };
  return { next, after };
}

/** Mean usage per equal time bucket, at most `points` points. */
function downsample(t: Float64Array, u: Float64Array, points: number): [number, number][] {
  const n = t.length;
  if (n === 0) return [];
  const end = t[n - 1];
  if (n <= points || end <= 0) return Array.from(t, (x, i) => [x, u[i]]);
  const out: [number, number][] = [];
  let i = 0;
  for (let b = 1; b <= points; b++) {
    const edge = end * b / points;
    let s = 0, c = 0;
    while (i < n && t[i] <= edge) {
      s += u[i++];
      c++;
    }
    if (c > 0) out.push([edge, s / c]);
  }
  return out;
}
