/**
 * Requests for `bench-serve`: vLLM's `random` dataset (uniform lengths around
 * `--random-input-len` / `--random-output-len`), any named workload of bench/workloads,
 * or a trace file. Prompts are token ids when the server's vocabulary is known (exact
 * prompt lengths), else text of about one token per character.
 *
 * @module
 */

import { UsageError } from "../../core/errors.ts";
import { Rng } from "../../kernels/sim/rng.ts";
import { generateWorkload } from "../../bench/workloads/generate.ts";
import { readTrace } from "../../bench/workloads/trace.ts";
import { clipToContext, syntheticPromptTokens } from "../../core/simulation.ts";
import type { BenchRequest } from "./run.ts";

/** How to build the requests. */
export interface WorkloadOptions {
  /** "random", a workload name, or a trace file (.jsonl, .csv, .json). */
  workload: string;
  /** Number of requests. */
  count: number;
  /** Seed. */
  seed: number;
  /** Random dataset: mean input length. */
  randomInputLen: number;
  /** Random dataset: mean output length. */
  randomOutputLen: number;
  /** Random dataset: lengths are uniform in [len (1 - r), len (1 + r)]. */
  randomRangeRatio: number;
  /** The server's context length, when known (lengths are clipped to fit). */
  maxModelLen?: number;
  /** The server's vocabulary size, when known (then prompts are token ids). */
  vocabSize?: number;
  /** Token-id prompts are allowed (completions API only). */
  tokenIds: boolean;
  /** Tokens the server's chat template may add around the prompt (chat API). */
  templateTokens?: number;
}

/** Build the requests. */
export async function buildRequests(o: WorkloadOptions): Promise<BenchRequest[]> {
  let lengths: { prompt: number; output: number; tokens?: number[] }[];
  if (o.workload === "random") {
    const rng = new Rng(o.seed);
    const draw = (mean: number) => {
      const lo = Math.max(1, Math.floor(mean * (1 - o.randomRangeRatio)));
      const hi = Math.max(lo, Math.floor(mean * (1 + o.randomRangeRatio)));
      return rng.int(lo, hi);
    };
    lengths = Array.from({ length: o.count }, () => ({
      prompt: draw(o.randomInputLen),
      output: draw(o.randomOutputLen),
    }));
  } else if (/\.(jsonl|csv|json)$/.test(o.workload)) {
    const trace = await readTrace(o.workload);
    if (trace.length === 0) {
      throw new UsageError(`trace ${o.workload} holds no requests`, "--workload");
    }
    lengths = Array.from({ length: o.count }, (_, i) => {
      const r = trace[i % trace.length];
      return { prompt: r.promptLength, output: r.outputLength, tokens: r.promptTokens };
    });
  } else {
    lengths = generateWorkload({ workload: o.workload, requests: o.count, seed: o.seed }).map((
      r,
    ) => ({
      prompt: r.promptLength,
      output: r.outputLength,
    }));
  }
  const text = new Rng(o.seed + 1);
  return lengths.map((l, i) => {
    let prompt = l.prompt;
    let output = l.output;
    // Leave room for a BOS token and a chat template the server may add.
    if (o.maxModelLen !== undefined) {
      [prompt, output] = clipToContext(prompt, output, o.maxModelLen - 1 - (o.templateTokens ?? 0));
    }
    if (o.tokenIds && o.vocabSize !== undefined) {
      const tokens = l.tokens?.slice(0, prompt) ??
        syntheticPromptTokens(o.seed, i, prompt, o.vocabSize);
      return { prompt: tokens, promptLen: prompt, maxTokens: output };
    }
    return { prompt: words(text, prompt), promptLen: prompt, maxTokens: output };
  });
}

const LETTERS = "abcdefghijklmnopqrstuvwxyz";

/** Text of `n` characters: lower-case words separated by spaces. */
function words(rng: Rng, n: number): string {
  let s = "";
  while (s.length < n) {
    const len = rng.int(2, 8);
    for (let i = 0; i < len && s.length < n; i++) s += LETTERS[rng.int(0, 25)];
    if (s.length < n) s += " ";
  }
  return s;
}
