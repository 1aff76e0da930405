// Test doubles shared by the core tests.
import { z } from "zod";
import { definePlugin, type Plugin } from "../../plugins/define.ts";
import { builtinRegistry } from "../../plugins/builtins.ts";
import type { Registry } from "../../plugins/registry.ts";
import type { BatchSequence } from "../../core/types.ts";

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
