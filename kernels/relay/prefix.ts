/**
 * Finding the shared prompt RelayAttention serves: the longest prompt prefix that enough
 * requests share, or a configured system prompt, and which requests it applies to.
 *
 * @module
 */

import type { TokenIds } from "../../core/types.ts";

/** A shared prompt: its token ids (BOS included) and a stable id derived from them. */
export interface SharedPrompt {
  /** Changes whenever the tokens change. */
  id: string;
  /** Token ids. */
  tokens: readonly number[];
}

/** A 32-bit FNV-1a hash of token ids, as hex. */
function hashTokens(tokens: TokenIds): string {
  let h = 0x811c9dc5;
  for (const t of tokens) {
    h ^= t & 0xffff;
    h = Math.imul(h, 0x01000193) >>> 0;
    h ^= t >>> 16;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, "0");
}

/** The shared prompt made of `tokens`. */
export function sharedPrompt(tokens: TokenIds): SharedPrompt {
  return { id: `${tokens.length}-${hashTokens(tokens)}`, tokens: Array.from(tokens) };
}

/**
 * Whether a request with `prompt` can sit after `shared`: the prompt starts with it and
 * has at least one token of its own (the one the request computes first).
 */
export function extendsPrompt(prompt: TokenIds, shared: TokenIds): boolean {
  if (prompt.length <= shared.length) return false;
  for (let i = 0; i < shared.length; i++) if (prompt[i] !== shared[i]) return false;
  return true;
}

/**
 * The longest prefix shared by at least `minSharers` of `prompts`, when it is at least
 * `minPrefix` tokens long (and every sharer keeps a token of its own); else undefined.
 * Prompts are grouped by their first `minPrefix` tokens, the largest group wins (ties:
 * the group met first), and its longest common prefix is returned.
 */
export function longestSharedPrefix(
  prompts: readonly TokenIds[],
  minSharers: number,
  minPrefix: number,
): SharedPrompt | undefined {
  if (minPrefix < 1) throw new RangeError(`minPrefix must be at least 1, got ${minPrefix}`);
  const groups = new Map<string, TokenIds[]>();
  for (const p of prompts) {
    if (p.length <= minPrefix) continue;
    const key = p.slice(0, minPrefix).join(",");
    const g = groups.get(key);
    if (g) g.push(p);
    else groups.set(key, [p]);
  }
  let best: TokenIds[] | undefined;
  for (const g of groups.values()) if (!best || g.length > best.length) best = g;
  if (!best || best.length < Math.max(1, minSharers)) return undefined;
  let len = Math.min(...best.map((p) => p.length - 1));
  const first = best[0];
  for (const p of best) {
    let i = minPrefix;
    while (i < len && p[i] === first[i]) i++;
    len = i;
  }
  return sharedPrompt(first.slice(0, len));
}
