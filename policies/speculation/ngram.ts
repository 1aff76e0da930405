/**
 * `ngram` speculation plugin: prompt lookup decoding. The draft is what followed the most
 * recent earlier occurrence of the request's last few tokens (longest n-gram first), in its
 * prompt or output: free to propose, and often right when the output copies the input
 * (code edits, quotes, extraction). No model runs, so it costs nothing on a simulated GPU.
 *
 * @module
 */

import { z } from "zod";
import { definePlugin, type Plugin } from "../../plugins/define.ts";
import type { Speculator } from "../../core/slots.ts";
import type { RequestView } from "../../core/types.ts";

/** Settings of {@link promptLookup}. */
export interface LookupSettings {
  /** Longest n-gram matched. */
  maxNgram: number;
  /** Shortest n-gram matched. */
  minNgram: number;
  /** Only the latest this-many tokens are searched. */
  window: number;
}

/**
 * Up to `k` tokens that followed the latest earlier occurrence of the request's last `n`
 * tokens, for `n` from `maxNgram` down to `minNgram`; empty when none occurs.
 */
export function promptLookup(req: RequestView, k: number, o: LookupSettings): number[] {
  const p = req.promptTokens, out = req.outputTokens;
  const len = p.length + out.length;
  const at = (i: number) => (i < p.length ? p[i] : out[i - p.length]);
  const from = Math.max(0, len - o.window);
  for (let n = Math.min(o.maxNgram, len - 1); n >= o.minNgram; n--) {
    // The latest start s < len - n whose n tokens equal the last n.
    for (let s = len - n - 1; s >= from; s--) {
      let j = 0;
      while (j < n && at(s + j) === at(len - n + j)) j++;
      if (j < n) continue;
      const draft: number[] = [];
      for (let i = s + n; i < len && draft.length < k; i++) draft.push(at(i));
      if (draft.length > 0) return draft;
    }
  }
  return [];
}

const options = z.object({
  k: z.number().int().min(1).max(64).default(4).describe("draft tokens per step"),
  maxNgram: z.number().int().min(1).max(16).default(3).describe("longest n-gram matched"),
  minNgram: z.number().int().min(1).max(16).default(1).describe("shortest n-gram matched"),
  window: z.number().int().min(2).default(4096).describe("tokens searched, the latest first"),
});

/** The `ngram` plugin. */
export const ngram: Plugin<"speculation", typeof options> = definePlugin({
  name: "ngram",
  slot: "speculation",
  description: "prompt lookup decoding: draft what followed the last n-gram earlier on",
  options,
  create(opts): Speculator {
    return {
      propose: (_view, decodes) => ({ drafts: decodes.map((r) => promptLookup(r, opts.k, opts)) }),
    };
  },
});
