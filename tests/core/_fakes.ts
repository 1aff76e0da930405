// Test doubles shared by the core tests.
import { z } from "zod";
import { definePlugin, type Plugin } from "../../plugins/define.ts";
import { builtinRegistry } from "../../plugins/builtins.ts";
import type { Registry } from "../../plugins/registry.ts";
import type { BatchSequence, RequestView } from "../../core/types.ts";
import type { Speculator } from "../../core/slots.ts";
import { Rng } from "../../kernels/sim/rng.ts";

/** An executor that returns `next(seq)` for each sampling sequence and no KV at all. */
export function scriptedExecutor(next: (seq: BatchSequence) => number): Plugin<"executor"> {
  return definePlugin({
    name: "scripted",
    slot: "executor",
    options: z.object({}),
    create: () => ({
      simulated: true,
      run: (batch) => ({
        tokens: batch.sequences.map((s) => (s.sample ? next(s) : -1)),
        duration: 0.01,
      }),
    }),
  });
}

/** The built-ins plus `extra`. */
export function registryWith(...extra: Plugin[]): Registry {
  const r = builtinRegistry();
  for (const p of extra) r.register(p);
  return r;
}

/**
 * A `recorded` speculation plugin: drafts of 1..6 tokens read from `outputs()` (a plain
 * run's tokens, by request id `r<index>`), each corrupted at a random place half the time,
 * so that accepted lengths run from 0 to the draft's. `reseed(n)` restarts its draws.
 */
export function recordedDrafts(outputs: () => number[][]): Plugin<"speculation"> & {
  reseed(seed: number): void;
} {
  let rng = new Rng(1);
  const plugin = definePlugin({
    name: "recorded",
    slot: "speculation",
    create: (): Speculator => ({
      propose: (_view, decodes: readonly RequestView[]) => ({
        drafts: decodes.map((r) => {
          const done = r.outputTokens.length;
          const k = 1 + rng.int(0, 5);
          const draft = (outputs()[Number(r.id.slice(1))] ?? []).slice(done, done + k);
          if (draft.length > 0 && rng.next() < 0.5) {
            draft[rng.int(0, draft.length - 1)] = rng.int(3, 250);
          }
          return draft;
        }),
      }),
    }),
  });
  return Object.assign(plugin, { reseed: (seed: number) => void (rng = new Rng(seed)) });
}
