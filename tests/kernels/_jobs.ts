/**
 * Test helper: a fixed pseudo-random workload of greedy requests for engine tests.
 *
 * @module
 */

import type { RequestEvent, RequestInput } from "../../core/types.ts";

/** One request of a workload. */
export interface Job {
  /** Prompt token ids. */
  prompt: number[];
  /** Tokens to generate. */
  maxTokens: number;
  /** Engine step at which it is added. */
  arriveAtStep: number;
}

/** The shape of a workload from {@link jobs}. */
export interface JobShape {
  /** Own prompt tokens: 1 .. this many. */
  promptMax: number;
  /** Tokens to generate: `tokensMin .. tokensMin + tokensSpan - 1`. */
  tokensMin: number;
  tokensSpan: number;
  /** Arrivals over steps `0 .. arrivalSteps - 1`. */
  arrivalSteps: number;
  /** Put in front of every other prompt (the 1st, 3rd, ...): a prefix to share. */
  sharedPrefix?: number[];
}

/** `n` requests drawn from `seed` (the same seed gives the same workload). */
export function jobs(n: number, seed: number, shape: JobShape): Job[] {
  let s = seed;
  const next = (m: number) => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return (s >>> 8) % m;
  };
  return Array.from({ length: n }, (_, k) => ({
    prompt: [
      ...(shape.sharedPrefix && k % 2 === 0 ? shape.sharedPrefix : []),
      ...Array.from({ length: 1 + next(shape.promptMax) }, () => 3 + next(250)),
    ],
    maxTokens: shape.tokensMin + next(shape.tokensSpan),
    arriveAtStep: next(shape.arrivalSteps),
  }));
}

/** What {@link serveJobs} saw: per request its tokens and how it ended; engine steps run. */
export interface Served {
  /** Tokens per request, in workload order. */
  tokens: number[][];
  /** Finish reason per request. */
  reasons: string[];
  /** Engine steps run. */
  steps: number;
}

/** Add each job greedily at its step and step `engine` until all are done. */
export async function serveJobs(
  engine: {
    add(input: RequestInput, listener: (ev: RequestEvent) => void): string;
    step(): Promise<unknown>;
    readonly hasWork: boolean;
  },
  work: Job[],
): Promise<Served> {
  const out: Served = { tokens: work.map(() => []), reasons: work.map(() => ""), steps: 0 };
  const maxStep = Math.max(...work.map((j) => j.arriveAtStep));
  for (let step = 0; step <= maxStep || engine.hasWork; step++) {
    work.forEach((j, k) => {
      if (j.arriveAtStep !== step) return;
      engine.add({
        id: `r${k}`,
        promptTokens: j.prompt,
        sampling: { temperature: 0, maxTokens: j.maxTokens, ignoreEos: true },
      }, (ev) => {
        if (ev.type === "token") out.tokens[k].push(ev.token);
        else if (ev.type === "finish") out.reasons[k] = ev.reason;
      });
    });
    await engine.step();
    out.steps++;
    if (step >= 2000) throw new Error("the engine made no progress");
  }
  return out;
}
