import assert from "node:assert/strict";
import { z } from "zod";
import { definePlugin } from "../../plugins/define.ts";
import {
  coerceFlagValue,
  optionsHelp,
  optionsJsonSchema,
  parseOptions,
} from "../../plugins/options.ts";
import { UsageError } from "../../core/errors.ts";
import { Registry } from "../../plugins/registry.ts";
import { builtinRegistry } from "../../plugins/builtins.ts";

const plugin = definePlugin({
  name: "demo",
  slot: "batcher",
  options: z.object({
    tokenBudget: z.union([z.number().int().min(16).max(8192), z.literal("auto")]).default(512),
    mode: z.enum(["fast", "fair"]).default("fair").describe("how to share"),
    enabled: z.boolean().default(true),
  }),
  create: () => ({ plan: () => ({ scheduled: [], preempted: [] }) }),
});

Deno.test("options: defaults fill in, and a bad value names the flag, the value and what is allowed", () => {
  assert.deepEqual(parseOptions(plugin, {}), { tokenBudget: 512, mode: "fair", enabled: true });
  assert.deepEqual(parseOptions(plugin, { tokenBudget: "auto" }), {
    tokenBudget: "auto",
    mode: "fair",
    enabled: true,
  });
  assert.throws(
    () => parseOptions(plugin, { tokenBudget: 4 }),
    (e: unknown) =>
      e instanceof UsageError && e.param === "--batcher.token-budget" &&
      /got 4/.test(e.message) && /an integer >= 16 and <= 8192 or "auto"/.test(e.message),
  );
  assert.throws(() => parseOptions(plugin, { mode: "greedy" }), /one of "fast", "fair"/);
  assert.throws(
    () => parseOptions(plugin, { colour: 1 }),
    /has no option "colour"; options: token-budget, mode, enabled/,
  );
});

Deno.test("options: command-line strings are coerced by the schema's types", () => {
  const props = optionsJsonSchema(plugin.options);
  assert.equal(coerceFlagValue("1024", props.tokenBudget), 1024);
  assert.equal(coerceFlagValue("auto", props.tokenBudget), "auto");
  assert.equal(coerceFlagValue("false", props.enabled), false);
  assert.equal(coerceFlagValue("fast", props.mode), "fast");
  assert.ok(
    optionsHelp(plugin).some((l) =>
      l.startsWith("--batcher.mode") && l.includes('(default "fair")') && l.includes("how to share")
    ),
  );
});

Deno.test("registry: slots are registered, not fixed; names and API versions are checked", () => {
  const r = builtinRegistry();
  assert.deepEqual(r.slotNames().slice(0, 5), [
    "scheduler",
    "admission",
    "batcher",
    "kvcache",
    "executor",
  ]);
  r.defineSlot({
    name: "router",
    apiVersion: 1,
    defaultPlugin: "round-robin",
    description: "model pools",
  });
  r.register(definePlugin({ name: "round-robin", slot: "router", create: () => ({}) }));
  assert.equal(r.get("router", "round-robin").name, "round-robin");
  assert.throws(
    () => r.get("batcher", "nope"),
    /unknown batcher plugin "nope"; allowed: vllm, prefill-first/,
  );
  assert.throws(
    () => r.register(definePlugin({ name: "x", slot: "gateway", create: () => ({}) })),
    /slot "gateway", which does not exist/,
  );
  assert.throws(
    () =>
      r.register(definePlugin({ name: "y", slot: "router", apiVersion: 2, create: () => ({}) })),
    /API version 2/,
  );
  assert.throws(
    () => r.register(plugin.name === "demo" ? { ...plugin, name: "vllm" } : plugin),
    /already registered/,
  );
  assert.throws(
    () => definePlugin({ name: "Bad Name", slot: "widget", create: () => ({}) }),
    /not allowed/,
  );
  const copy = r.clone();
  copy.register(plugin);
  assert.equal(r.has("batcher", "demo"), false);
  assert.ok(new Registry().slotNames().length === 0);
});
