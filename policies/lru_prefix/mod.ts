/**
 * `lru-prefix` kvcache plugin: full blocks are hash-chained and reused across requests;
 * when the pool runs dry, the cached free block freed longest ago is evicted first (the
 * prefix caching of vLLM v1).
 *
 * @module
 */

import { z } from "zod";
import { definePlugin, type Plugin } from "../../plugins/define.ts";
import type { KvCachePolicy } from "../../core/slots.ts";
import { LruBlockQueue } from "../../core/lru_queue.ts";

const options = z.object({
  enabled: z.boolean().default(true).describe("reuse cached full blocks across requests"),
});

/** The `lru-prefix` plugin. */
export const lruPrefix: Plugin<"kvcache", typeof options> = definePlugin({
  name: "lru-prefix",
  slot: "kvcache",
  description: "hash-chained prefix caching, least-recently-freed eviction (vLLM v1)",
  options,
  create(opts, ctx): KvCachePolicy {
    const queue = new LruBlockQueue(ctx.kv.numBlocks);
    return {
      prefixCaching: opts.enabled,
      get size() {
        return queue.size;
      },
      onCachedFree: (block) => queue.push(block),
      onReuse: (block) => queue.remove(block),
      evict: () => queue.shift(),
    };
  },
});
