/**
 * Worst-case KV reservation, as Orca and FasterTransformer do it: a request is admitted
 * only when the blocks for its longest possible context fit beside what every running
 * request may still grow to (Sarathi-Serve spec, section 1.5 and pitfall 8).
 *
 * @module
 */

import type { EngineView, RequestView } from "../../core/types.ts";

/** How much context a request reserves at admission. */
export type ReserveMode = "max-model-len" | "max-tokens";

/** Blocks `req` reserves for its whole life. */
export function reservedBlocks(req: RequestView, view: EngineView, mode: ReserveMode): number {
  const maxLen = view.limits.maxModelLen;
  const tokens = mode === "max-model-len"
    ? maxLen
    : Math.min(maxLen, req.promptTokens.length + req.maxTokens);
  // A reservation larger than the pool would block forever: one such request at a time.
  return Math.min(view.kv.totalBlocks, Math.ceil(tokens / view.kv.blockSize));
}

/**
 * Blocks the running requests (less those in `skip`) may still take: their reservation
 * minus what they hold.
 */
export function outstandingBlocks(
  view: EngineView,
  mode: ReserveMode,
  skip: (req: RequestView) => boolean,
): number {
  let n = 0;
  for (const r of view.running) {
    if (skip(r)) continue;
    n += Math.max(0, reservedBlocks(r, view, mode) - r.numBlocks);
  }
  return n;
}
