/**
 * How long to keep a finished agent turn's KV for the program's next turn (Continuum,
 * spec section 3(a), "CalcTTL"). Pinning for `tau` seconds costs the memory it holds for
 * `tau`; it pays off if the next turn arrives within `tau`, saving the re-prefill and the
 * queueing the returning request would suffer out of order. Per unit of memory:
 *
 *   tau* = argmax over tau of  P(tool time <= tau) * (meanQueueing * eta + prefill) - tau
 *
 * with P the empirical CDF of the tool's observed pauses (candidates: 0 and each observed
 * value). Until `coldStart` pauses are seen, pauses are assumed exponential with mean
 * `coldMean`, which gives tau* = mean * ln(B / mean) when B exceeds the mean, else 0.
 *
 * `eta` is minus the correlation between a program's turns served so far and its turns
 * left: 1 when programs have fixed lengths (keeping old programs first is shortest-remaining
 * first), 0 when lengths are memoryless. `meanQueueing` is the mean scheduling delay of
 * returning turns that found no pin.
 *
 * @module
 */

/** Sorted recent values, at most `limit` of them (the oldest go first). */
export class SortedWindow {
  readonly #fifo: number[] = [];
  #head = 0;
  /** The values, ascending. */
  readonly values: number[] = [];

  /** Keep the latest `limit` values. */
  constructor(readonly limit: number) {}

  /** Values held. */
  get size(): number {
    return this.values.length;
  }

  /** Add a value, dropping the oldest beyond the limit. */
  add(x: number): void {
    this.values.splice(this.#lowerBound(x), 0, x);
    this.#fifo.push(x);
    if (this.values.length > this.limit) {
      const old = this.#fifo[this.#head++];
      this.values.splice(this.#lowerBound(old), 1);
      if (this.#head > 1024 && this.#head * 2 > this.#fifo.length) {
        this.#fifo.splice(0, this.#head);
        this.#head = 0;
      }
    }
  }

  /** Mean of the values (0 when empty). */
  mean(): number {
    let s = 0;
    for (const v of this.values) s += v;
    return this.values.length > 0 ? s / this.values.length : 0;
  }

  #lowerBound(x: number): number {
    let lo = 0, hi = this.values.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.values[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/**
 * The tau maximizing `P(pause <= tau) * benefit - tau` over the candidates 0 and each
 * observed pause (`sorted` ascending).
 */
export function bestTtl(sorted: readonly number[], benefit: number): number {
  let best = 0, bestGain = 0;
  const n = sorted.length;
  for (let i = 0; i < n; i++) {
    if (i + 1 < n && sorted[i + 1] === sorted[i]) continue; // P counts every equal value
    const gain = ((i + 1) / n) * benefit - sorted[i];
    if (gain > bestGain) {
      bestGain = gain;
      best = sorted[i];
    }
  }
  return best;
}

/** The cold-start tau: pauses assumed exponential with mean `mean`. */
export function exponentialTtl(mean: number, benefit: number): number {
  return benefit > mean ? mean * Math.log(benefit / mean) : 0;
}

/** Running Pearson correlation of pairs. */
export class Correlation {
  #n = 0;
  #sx = 0;
  #sy = 0;
  #sxx = 0;
  #syy = 0;
  #sxy = 0;

  /** Pairs added. */
  get count(): number {
    return this.#n;
  }

  /** Add one pair. */
  add(x: number, y: number): void {
    this.#n++;
    this.#sx += x;
    this.#sy += y;
    this.#sxx += x * x;
    this.#syy += y * y;
    this.#sxy += x * y;
  }

  /** The correlation, or NaN when a variable has no variance. */
  value(): number {
    const n = this.#n;
    const cov = this.#sxy - this.#sx * this.#sy / n;
    const vx = this.#sxx - this.#sx * this.#sx / n;
    const vy = this.#syy - this.#sy * this.#sy / n;
    return vx > 0 && vy > 0 ? cov / Math.sqrt(vx * vy) : NaN;
  }
}

/** Settings of a {@link TtlEstimator}. */
export interface TtlSettings {
  /** "cost-benefit" (the paper's estimator) or "fixed" (a fixed pin for fast tools). */
  mode: "cost-benefit" | "fixed";
  /** Fixed mode: the pin, seconds. */
  fixedTtl: number;
  /** Fixed mode: pin only after tools whose mean pause is at most this (or unknown), seconds. */
  fixedMaxPause: number;
  /** Pauses observed before the empirical CDF is trusted (per tool, and overall). */
  coldStart: number;
  /** Cold start: the assumed mean pause, seconds. */
  coldMean: number;
  /** Completed programs before `eta` is measured rather than taken as 1. */
  etaWarmup: number;
  /** Pauses kept per tool. */
  historyLimit: number;
  /** Returning turns whose queueing is averaged. */
  queueWindow: number;
  /** Longest pin, seconds (pauses are heavy-tailed: bound them). */
  maxTtl: number;
}

/** What {@link TtlEstimator} needs to know of a finished turn. */
export interface FinishedTurn {
  /** The tool its response calls, if known. */
  tool: string | undefined;
  /** Seconds to compute its context again (re-prefill). */
  prefillSeconds: number;
}

const ANY_TOOL = "";

/** Learns tool pauses, queueing of returning turns and program lengths; computes pins. */
export class TtlEstimator {
  readonly #tools = new Map<string, SortedWindow>();
  readonly #queueing: number[] = [];
  #queueSum = 0;
  readonly #lengths = new Correlation();
  #programs = 0;

  /** With these settings. */
  constructor(readonly settings: TtlSettings) {
    this.#tools.set(ANY_TOOL, new SortedWindow(settings.historyLimit));
  }

  /** A tool's pause was observed (seconds). */
  recordPause(tool: string | undefined, seconds: number): void {
    this.#add(ANY_TOOL, seconds);
    if (tool !== undefined) this.#add(tool, seconds);
  }

  #add(key: string, seconds: number): void {
    let w = this.#tools.get(key);
    if (!w) this.#tools.set(key, w = new SortedWindow(this.settings.historyLimit));
    w.add(seconds);
  }

  /** A returning turn that found no pin waited this long to be scheduled. */
  recordQueueing(seconds: number): void {
    this.#queueing.push(seconds);
    this.#queueSum += seconds;
    if (this.#queueing.length > this.settings.queueWindow) {
      this.#queueSum -= this.#queueing.shift()!;
    }
  }

  /** A program ended after `turns` turns. */
  recordProgram(turns: number): void {
    for (let k = 0; k < turns; k++) this.#lengths.add(k, turns - k);
    this.#programs++;
  }

  /** Mean queueing of returning turns that found no pin, seconds. */
  get meanQueueing(): number {
    return this.#queueing.length > 0 ? this.#queueSum / this.#queueing.length : 0;
  }

  /** Minus the correlation of turns served and turns left, in [-1, 1] (1 until warm). */
  get eta(): number {
    if (this.#programs < this.settings.etaWarmup) return 1;
    const c = this.#lengths.value();
    return Number.isNaN(c) ? 1 : Math.max(-1, Math.min(1, -c));
  }

  /** Pauses observed so far (all tools). */
  get pausesSeen(): number {
    return this.#tools.get(ANY_TOOL)!.size;
  }

  /** Seconds to keep this turn's KV (0: do not pin). */
  ttl(turn: FinishedTurn): number {
    const s = this.settings;
    const perTool = turn.tool !== undefined ? this.#tools.get(turn.tool) : undefined;
    const all = this.#tools.get(ANY_TOOL)!;
    let tau: number;
    if (s.mode === "fixed") {
      const seen = perTool && perTool.size > 0 ? perTool : undefined;
      tau = seen === undefined || seen.mean() <= s.fixedMaxPause ? s.fixedTtl : 0;
    } else {
      const benefit = this.meanQueueing * this.eta + turn.prefillSeconds;
      if (all.size <= s.coldStart) tau = exponentialTtl(s.coldMean, benefit);
      else {
        const cdf = perTool && perTool.size > s.coldStart ? perTool : all;
        tau = bestTtl(cdf.values, benefit);
      }
    }
    return Math.min(tau, s.maxTtl);
  }

  /** Private state for a successor (hot swap). */
  exportState(): unknown {
    return {
      tools: [...this.#tools].map(([k, w]) => [k, w.values.slice()]),
      queueing: this.#queueing.slice(),
    };
  }

  /** Take over a predecessor's observations. */
  importState(state: unknown): void {
    const st = state as { tools?: [string, number[]][]; queueing?: number[] } | undefined;
    for (const [tool, values] of st?.tools ?? []) for (const v of values) this.#add(tool, v);
    for (const q of st?.queueing ?? []) this.recordQueueing(q);
  }
}
