/**
 * When RelayAttention pays, and by how much at most.
 *
 * A decode step of `B` requests sharing an `S`-token prompt, each with `U` tokens of its
 * own, reads `B (S + U)` KV rows with ordinary paged attention and `S + B U` with relay:
 * the IO bound on the attention speedup is `B (S + U) / (S + B U)` (relay spec, 1(a)).
 * The extra kernel makes relay slower at batch 1 (spec, 1(f) pitfall 1), hence a gate.
 *
 * @module
 */

/** Upper bound on relay's attention speedup from memory traffic alone. */
export function relayIoBound(batch: number, shared: number, own: number): number {
  if (!(batch > 0) || shared < 0 || own < 0 || shared + own <= 0) {
    throw new RangeError(
      `relayIoBound: need batch > 0 and non-negative lengths, got B=${batch} S=${shared} U=${own}`,
    );
  }
  return (batch * (shared + own)) / (shared + batch * own);
}

/** Thresholds of the relay gate. */
export interface RelayGateOptions {
  /** Fewest requests in a step sharing the prompt for relay to be used (default 4). */
  minSharers?: number;
  /** Shortest shared prompt, in tokens, for relay to be used (default 256). */
  minPrefix?: number;
}

/**
 * Whether a step should take the relay path: enough requests share the prompt and the
 * prompt is long enough. Otherwise ordinary attention over a copy of the prefix is used.
 */
export function useRelay(
  sharers: number,
  prefixLen: number,
  options: RelayGateOptions = {},
): boolean {
  const minSharers = options.minSharers ?? 4;
  const minPrefix = options.minPrefix ?? 256;
  return prefixLen > 0 && sharers >= minSharers && prefixLen >= minPrefix;
}
