/**
 * Worst-case KV reservation, as Orca and FasterTransformer do it: a request is admitted
 * only when the blocks for its longest possible context fit beside what every running
 * request may still grow to (Sarathi-Serve spec, section 1.5 and pitfall 8).
 *
 * @module
 */

import { z } from "zod";
import type { EngineView, RequestView } from "../../core/types.ts";

/** How much context a request reserves at admission. */
export type ReserveMode = "max-model-len" | "max-tokens";

/** Options schema shared by the batchers that reserve worst-case KV. */
export type ReservingOptions = z.ZodObject<{
  maxNumSeqs: z.ZodDefault<z.ZodNumber>;
  maxNumBatchedTokens: z.ZodOptional<z.ZodNumber>;
  reserve: z.ZodDefault<
    z.ZodEnum<{ "max-model-len": "max-model-len"; "max-tokens": "max-tokens" }>
  >;
}>;

/** The options of a reserving batcher; `seqs` describes its batch-size cap. */
export function reservingOptions(seqs: string): ReservingOptions {
  return z.object({
    maxNumSeqs: z.number().int().min(1).default(16).describe(seqs),
    maxNumBatchedTokens: z.number().int().min(1).optional().describe(
      "tokens per step (default: the model's maximum length)",
    ),
    reserve: z.enum(["max-model-len", "max-tokens"]).default("max-model-len").describe(
      "KV reserved per request: the model's maximum length or prompt plus max_tokens",
    ),
  });
}

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
