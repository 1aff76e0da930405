/**
 * `relay` kvcache plugin (RelayAttention, relay spec section 1): names the shared system
 * prompt whose KV the executor computes once and keeps contiguous, so that each step's
 * attention reads it once for all requests. Requests' own blocks are cached and evicted as
 * `lru-prefix` does.
 *
 * The prompt is `--kvcache.system-prompt` (text, or `@path` of a file), tokenized with
 * BOS; or, when empty, the longest prompt prefix shared by at least `min-sharers` of the
 * candidate requests, at least `min-prefix` tokens long. A found prefix is kept while
 * enough candidates still extend it, so the executor does not refill it needlessly.
 *
 * The engine asks `relayPrompt(candidates)` each step; a request whose prompt extends the
 * prompt becomes `prefixed` (see `Batch.relay` and `BatchSequence.prefixed`).
 *
 * @module
 */

import { z } from "zod";
import { definePlugin, type Plugin } from "../../plugins/define.ts";
import type { KvCachePolicy } from "../../core/slots.ts";
import type { RequestView } from "../../core/types.ts";
import { UsageError } from "../../core/errors.ts";
import { LruBlockQueue } from "../../core/lru_queue.ts";
import {
  extendsPrompt,
  longestSharedPrefix,
  type SharedPrompt,
  sharedPrompt,
} from "../../kernels/relay/prefix.ts";

/** A kvcache policy that also names the step's shared prompt. */
export interface RelayKvCache extends KvCachePolicy {
  /** The shared prompt for a step with these candidate requests, or undefined. */
  relayPrompt(candidates: readonly RequestView[]): SharedPrompt | undefined;
}

/** Options schema of the `relay` plugin. */
export type RelayOptions = z.ZodObject<{
  systemPrompt: z.ZodDefault<z.ZodString>;
  minSharers: z.ZodDefault<z.ZodNumber>;
  minPrefix: z.ZodDefault<z.ZodNumber>;
}>;

const options: RelayOptions = z.object({
  systemPrompt: z.string().default("").describe(
    "shared system prompt, as text or @path of a file; empty: the longest prefix shared by the requests",
  ),
  minSharers: z.number().int().min(1).default(4).describe(
    "fewest requests sharing a found prefix (automatic mode)",
  ),
  minPrefix: z.number().int().min(1).default(256).describe(
    "shortest prefix, in tokens, worth relaying (automatic mode)",
  ),
});

/** The `relay` plugin. */
export const relay: Plugin<"kvcache", RelayOptions> = definePlugin({
  name: "relay",
  slot: "kvcache",
  description:
    "RelayAttention: one shared system-prompt KV read once per step (plus LRU prefix caching)",
  options,
  async create(opts, ctx): Promise<RelayKvCache> {
    const queue = new LruBlockQueue(ctx.kv.numBlocks);
    let fixed: SharedPrompt | undefined;
    if (opts.systemPrompt !== "") {
      let text = opts.systemPrompt;
      if (text.startsWith("@")) {
        try {
          text = await Deno.readTextFile(text.slice(1));
        } catch (e) {
          throw new UsageError(
            `--kvcache.system-prompt: cannot read ${text.slice(1)} (${(e as Error).message})`,
            "system-prompt",
          );
        }
      }
      fixed = sharedPrompt(ctx.model.tokenizer.encode(text, { addBos: true }));
    }
    let current: SharedPrompt | undefined;
    // Per-request memo of "extends the current prompt", and the requests the last search saw:
    // a step costs a map lookup per candidate unless new requests arrived.
    let extendsCurrent = new Map<string, boolean>();
    const searched = new Set<string>();
    const sharers = (candidates: readonly RequestView[]): number => {
      let n = 0;
      for (const r of candidates) {
        let yes = extendsCurrent.get(r.id);
        if (yes === undefined) {
          extendsCurrent.set(r.id, yes = extendsPrompt(r.promptTokens, current!.tokens));
        }
        if (yes) n++;
      }
      return n;
    };
    return {
      prefixCaching: true,
      get size() {
        return queue.size;
      },
      onCachedFree: (block) => queue.push(block),
      onReuse: (block) => queue.remove(block),
      evict: () => queue.shift(),
      onFinish(req) {
        extendsCurrent.delete(req.id);
        searched.delete(req.id);
      },
      relayPrompt(candidates) {
        if (fixed) return fixed;
        if (current && sharers(candidates) >= opts.minSharers) return current;
        if (candidates.every((r) => searched.has(r.id))) return current = undefined;
        for (const r of candidates) searched.add(r.id);
        const found = longestSharedPrefix(
          candidates.map((r) => r.promptTokens),
          opts.minSharers,
          opts.minPrefix,
        );
        if (found?.id !== current?.id) extendsCurrent = new Map();
        current = found;
        return current;
      },
    };
  },
});

export default relay;
