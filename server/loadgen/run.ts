/**
 * The benchmark loop of `bench-serve`: send each request at its scheduled time (or as
 * soon as a slot frees under `--max-concurrency`), stream the answers, and collect the
 * outputs and the run's duration.
 *
 * @module
 */

import { sendTimes } from "./arrivals.ts";
import { type RequestOutput, type RequestSpec, sendRequest } from "./request.ts";

/** One request of the workload. */
export interface BenchRequest {
  /** Prompt text or token ids. */
  prompt: string | number[];
  /** Prompt length in tokens. */
  promptLen: number;
  /** Output cap (with `ignore_eos`, the exact output length). */
  maxTokens: number;
}

/** How to run. */
export interface RunOptions {
  /** Full endpoint URL. */
  url: string;
  /** Which API. */
  backend: RequestSpec["backend"];
  /** Model name. */
  model: string;
  /** The requests, in send order. */
  requests: BenchRequest[];
  /** Requests per second (Infinity: all at once). */
  rate: number;
  /** Gamma shape of the gaps (1 = Poisson). */
  burstiness: number;
  /** Most requests in flight, or undefined for no limit. */
  maxConcurrency?: number;
  /** Seed of the send times. */
  seed: number;
  /** Extra body fields. */
  extraBody: Record<string, unknown>;
  /** Extra headers. */
  headers: Record<string, string>;
  /** Called after each request ends. */
  onDone?: (done: number, total: number) => void;
}

/** Run the benchmark; `duration` is seconds from the first send to the last answer. */
export async function runBenchmark(
  o: RunOptions,
): Promise<{ outputs: RequestOutput[]; duration: number }> {
  const t0 = performance.now();
  const now = () => (performance.now() - t0) / 1000;
  const times = sendTimes(o.requests.length, o.rate, o.burstiness, o.seed);
  let inFlight = 0;
  const waiters: (() => void)[] = [];
  const acquire = async () => {
    if (o.maxConcurrency === undefined) return;
    while (inFlight >= o.maxConcurrency) await new Promise<void>((r) => waiters.push(r));
    inFlight++;
  };
  const release = () => {
    if (o.maxConcurrency === undefined) return;
    inFlight--;
    waiters.shift()?.();
  };
  let done = 0;
  const tasks: Promise<RequestOutput>[] = [];
  for (let i = 0; i < o.requests.length; i++) {
    const wait = times[i] - now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait * 1000));
    const r = o.requests[i];
    tasks.push((async () => {
      await acquire();
      try {
        return await sendRequest({
          url: o.url,
          backend: o.backend,
          model: o.model,
          prompt: r.prompt,
          promptLen: r.promptLen,
          maxTokens: r.maxTokens,
          extraBody: o.extraBody,
          headers: o.headers,
        }, now);
      } finally {
        release();
        o.onDone?.(++done, o.requests.length);
      }
    })());
  }
  const outputs = await Promise.all(tasks);
  return { outputs, duration: now() };
}
