/**
 * Per-request metrics from a request's event stream: arrival, first scheduling, token
 * times, finish. Everything in seconds on the engine clock.
 *
 * @module
 */

import type { FinishReason, RequestEvent } from "../types.ts";
/** Where inter-token gaps go (a list or a run-length list). */
export interface GapSink {
  /** Append a gap, seconds. */
  push(x: number): void;
}

/** What one finished request measured. */
export interface RequestRecord {
  /** Request id. */
  id: string;
  /** Arrival time. */
  arrival: number;
  /** When it was first scheduled (-1 if never). */
  firstScheduled: number;
  /** Time of the first token (-1 if none). */
  firstToken: number;
  /** Time of the last token (-1 if none). */
  lastToken: number;
  /** Finish time. */
  finish: number;
  /** Prompt tokens. */
  promptTokens: number;
  /** Output tokens generated. */
  outputTokens: number;
  /** Prompt tokens served from the prefix cache. */
  cachedTokens: number;
  /** Largest gap between two consecutive output tokens, seconds (0 with under 2 tokens). */
  maxGap: number;
  /** Preemptions it suffered (recompute or swap). */
  preemptions: number;
  /** Why it ended. */
  reason: FinishReason;
}

/** Time to first token. */
export function ttft(r: RequestRecord): number {
  return r.firstToken - r.arrival;
}

/** End-to-end latency (arrival to the last token). */
export function e2el(r: RequestRecord): number {
  return r.lastToken - r.arrival;
}

/** Time per output token after the first, `(E2EL - TTFT) / (n - 1)`; 0 with under 2 tokens. */
export function tpot(r: RequestRecord): number {
  return r.outputTokens > 1 ? (r.lastToken - r.firstToken) / (r.outputTokens - 1) : 0;
}

/** Whether it completed (ended by EOS, a stop condition or its length cap). */
export function succeeded(r: RequestRecord): boolean {
  return (r.reason === "stop" || r.reason === "length") && r.outputTokens > 0;
}

/**
 * Build a listener that records one request; `done` gets the record at its finish. The
 * timing comes from the finish event, so the request need not stream; when it does and
 * `itl` is given, every inter-token gap is appended to `itl` as well.
 */
export function recordRequest(
  promptTokens: number,
  done: (r: RequestRecord) => void,
  itl?: GapSink,
): (ev: RequestEvent) => void {
  let last = -1;
  return (ev) => {
    if (ev.type === "token") {
      if (last >= 0) itl?.push(ev.time - last);
      last = ev.time;
      return;
    }
    done({
      id: ev.id,
      arrival: ev.arrivalTime,
      firstScheduled: ev.firstScheduledTime,
      firstToken: ev.firstTokenTime,
      lastToken: ev.lastTokenTime,
      finish: ev.time,
      promptTokens,
      outputTokens: ev.usage.completionTokens,
      cachedTokens: ev.usage.cachedTokens,
      maxGap: ev.maxTokenGap,
      preemptions: ev.numPreemptions,
      reason: ev.reason,
    });
  };
}
