/**
 * Testing plugins without a server or a model.
 *
 * - {@link testPlugin} runs a plugin for a scripted workload on a simulated executor and
 *   returns what happened (finished requests, steps, fallbacks, decision time).
 * - {@link conformance} runs the rules every plugin of a slot must keep (valid plans, no
 *   request lost, no block leaked, the same greedy tokens as the default plugins) and
 *   returns one result per rule, so a third-party plugin can check itself:
 *
 * @example
 * ```ts
 * import { conformance } from "@baton/baton/testing";
 * import myScheduler from "./my_scheduler.ts";
 *
 * for (const r of await conformance(myScheduler)) {
 *   Deno.test(`${myScheduler.name}: ${r.rule}`, () => {
 *     if (!r.ok) throw new Error(r.detail);
 *   });
 * }
 * ```
 *
 * @module
 */

import { Engine } from "../core/engine.ts";
import { VirtualClock } from "../core/clock.ts";
import { presetModel } from "../core/model/load.ts";
import type { BatchSequence, FinishReason, StepOutput, TurnInfo } from "../core/types.ts";
import { definePlugin, type Plugin } from "./define.ts";
import { builtinRegistry } from "./builtins.ts";

/** One scripted request. */
export interface ScenarioRequest {
  /** Prompt length in tokens (the tokens are made up). */
  promptLength: number;
  /** Tokens the simulated model generates before its end-of-sequence token. */
  outputLength: number;
  /** Arrival, seconds on the virtual clock (default 0). */
  arrivalTime?: number;
  /** Cap on generated tokens (default: outputLength + 16). */
  maxTokens?: number;
  /** Scheduling priority (lower first, default 0). */
  priority?: number;
  /** Share the first this-many prompt tokens with every other request that sets it (prefix caching). */
  sharedPrefix?: number;
  /** Multi-turn program, for program-aware plugins. */
  programId?: string;
  /** What its agent says of this turn. */
  turn?: TurnInfo;
}

/** A scripted workload and engine geometry. */
export interface Scenario {
  /** The requests. */
  requests: ScenarioRequest[];
  /** KV pool size in blocks (default 256). */
  numBlocks?: number;
  /** Tokens per block (default 16). */
  blockSize?: number;
  /** Options of the plugin under test. */
  options?: Record<string, unknown>;
  /** Plugins for the other slots (default: each slot's default). */
  others?: Record<string, { name: string; options?: Record<string, unknown> }>;
  /** Seconds a simulated step takes (default 0.01 + 1e-5 per token). */
  stepTime?: (numTokens: number) => number;
  /** Longest context (default 512: the conformance workload stays under it). */
  maxModelLen?: number;
  /** Give up after this many steps (default 100,000). */
  maxSteps?: number;
  /** What preemption does with KV (default "recompute"). */
  preemption?: "recompute" | "swap";
  /** Host swap space in blocks, with swap preemption (default 64). */
  swapBlocks?: number;
}

/** What a scenario run produced. */
export interface ScenarioResult {
  /** Per request (scenario order): finish reason, tokens, time to first token, end time. */
  requests: {
    reason: FinishReason | undefined;
    tokens: number[];
    ttft: number;
    end: number;
    error?: string;
  }[];
  /** Steps run. */
  steps: number;
  /** Slots whose plugin failed in some step (the default stood in). */
  fallbacks: string[];
  /** Blocks still held at the end (must be 0). */
  leakedBlocks: number;
  /** Mean decision time per step of the plugin's slot, seconds. */
  decisionTime: number;
  /** Preemptions. */
  preemptions: number;
  /** Preemptions that swapped the KV out. */
  swapOuts: number;
  /** Host swap slots still held at the end (must be 0). */
  leakedSwapBlocks: number;
  /** Virtual time at the end. */
  makespan: number;
}

/** Tokens of the scripted executor: a deterministic function of request and position. */
function scriptedToken(id: string, outputIndex: number): number {
  let h = 2166136261;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 16777619);
  return 3 + (((h ^ Math.imul(outputIndex + 1, 0x9e3779b1)) >>> 0) % 250);
}

function scriptedExecutor(stepTime: (n: number) => number): Plugin<"executor"> {
  return definePlugin({
    name: "scripted",
    slot: "executor",
    description: "simulated executor for plugin tests: hidden lengths, made-up tokens",
    create: (_o, ctx) => {
      const eos = ctx.model.config.eosTokenIds[0];
      const token = (s: BatchSequence, index: number) =>
        s.hidden && index + 1 >= s.hidden.outputLength ? eos : scriptedToken(s.id, index);
      return {
        simulated: true,
        verify: true,
        run: (batch) => {
          const out: StepOutput = {
            tokens: batch.sequences.map((s) => (s.sample ? token(s, s.outputIndex) : -1)),
            duration: stepTime(batch.numTokens),
          };
          // Speculative decoding: the token after each draft, as decoding one by one gives.
          if (batch.sequences.some((s) => s.drafts)) {
            out.verified = batch.sequences.map((s) =>
              s.drafts
                ? Array.from({ length: s.drafts + 1 }, (_, j) => token(s, s.outputIndex + j))
                : undefined
            );
          }
          return out;
        },
        // Swap preemption: nothing to copy; a block takes 0.1 ms each way.
        swap: (out, into) => 1e-4 * (out.length + into.length),
      };
    },
  });
}

/** Run `plugin` in its slot on a scripted workload (simulated executor, virtual clock). */
export async function testPlugin(plugin: Plugin, scenario: Scenario): Promise<ScenarioResult> {
  const registry = builtinRegistry();
  if (
    !registry.has(plugin.slot, plugin.name) || registry.get(plugin.slot, plugin.name) !== plugin
  ) {
    registry.register(plugin, { replace: true });
  }
  const stepTime = scenario.stepTime ?? ((n: number) => 0.01 + 1e-5 * n);
  if (plugin.slot !== "executor") registry.register(scriptedExecutor(stepTime), { replace: true });
  const clock = new VirtualClock();
  const engine = await Engine.create({
    model: presetModel("tiny"),
    registry,
    clock,
    blockSize: scenario.blockSize ?? 16,
    numBlocks: scenario.numBlocks ?? 256,
    maxModelLen: scenario.maxModelLen ?? 512,
    preemption: scenario.preemption,
    swapBlocks: scenario.swapBlocks ?? 64,
    log: () => {},
    plugins: {
      ...(plugin.slot !== "executor" ? { executor: { name: "scripted" } } : {}),
      ...scenario.others,
      [plugin.slot]: { name: plugin.name, options: scenario.options },
    },
  });
  const shared = Array.from({ length: scenario.maxModelLen ?? 512 }, (_, i) => 3 + ((i * 7) % 250));
  const results: ScenarioResult["requests"] = scenario.requests.map(() => ({
    reason: undefined,
    tokens: [],
    ttft: -1,
    end: -1,
  }));
  const pending = scenario.requests.map((r, i) => ({ r, i })).sort((a, b) =>
    (a.r.arrivalTime ?? 0) - (b.r.arrivalTime ?? 0)
  );
  const fallbacks = new Set<string>();
  let steps = 0, decision = 0;
  engine.onStep((rep) => {
    steps++;
    rep.fallbacks.forEach((f) => fallbacks.add(f));
    decision += rep.decisionTime[plugin.slot] ?? 0;
  });
  const limit = scenario.maxSteps ?? 100_000;
  let next = 0;
  while (next < pending.length || engine.hasWork) {
    if (!engine.hasWork) clock.advanceTo(pending[next].r.arrivalTime ?? 0);
    while (next < pending.length && (pending[next].r.arrivalTime ?? 0) <= clock.now()) {
      const { r, i } = pending[next++];
      const prefix = Math.min(r.sharedPrefix ?? 0, r.promptLength);
      const promptTokens = [
        ...shared.slice(0, prefix),
        ...Array.from({ length: r.promptLength - prefix }, (_, k) => scriptedToken(`p${i}`, k)),
      ];
      const out = results[i];
      engine.add({
        id: `s${i}`,
        promptTokens,
        arrivalTime: r.arrivalTime ?? 0,
        priority: r.priority,
        programId: r.programId,
        turn: r.turn,
        hidden: { outputLength: r.outputLength },
        sampling: { maxTokens: r.maxTokens ?? r.outputLength + 16, temperature: 0 },
      }, (ev) => {
        if (ev.type === "token") {
          if (out.tokens.length === 0) out.ttft = ev.time - (r.arrivalTime ?? 0);
          out.tokens.push(ev.token);
        } else {
          out.reason = ev.reason;
          out.end = ev.time;
          out.error = ev.error;
        }
      });
    }
    if (engine.hasWork) await engine.step();
    if (steps > limit) break;
  }
  const leaked = engine.pool.usedBlocks;
  const stats = engine.stats;
  await engine.close();
  return {
    requests: results,
    steps,
    fallbacks: [...fallbacks],
    leakedBlocks: leaked,
    decisionTime: steps ? decision / steps : 0,
    preemptions: stats.preemptions,
    swapOuts: stats.swapOuts,
    leakedSwapBlocks: stats.swapBlocksUsed,
    makespan: clock.now(),
  };
}

/** The outcome of one conformance rule. */
export interface ConformanceResult {
  /** The rule. */
  rule: string;
  /** Whether the plugin kept it. */
  ok: boolean;
  /** What went wrong, when it did. */
  detail: string;
}

/** Seeded workload for conformance: mixed lengths, shared prefixes, bursts. */
function conformanceWorkload(seed: number, n: number): ScenarioRequest[] {
  let s = seed >>> 0;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
  return Array.from({ length: n }, (_, i) => ({
    promptLength: 8 + Math.floor(rand() * 300),
    outputLength: 1 + Math.floor(rand() * 60),
    arrivalTime: Math.floor(i / 8) * 0.05 + rand() * 0.02,
    sharedPrefix: rand() < 0.3 ? 64 : 0,
    priority: Math.floor(rand() * 3),
    // Some requests are agent turns, for program-aware policies.
    ...(i % 3 === 0
      ? { programId: `p${i % 7}`, turn: i % 9 === 0 ? { last: true } : { tool: "ls" } }
      : {}),
  }));
}

/**
 * Check the rules every plugin of a policy slot (scheduler, admission, batcher, kvcache,
 * speculation)
 * must keep, under a roomy and a tight KV pool: every plan valid (no fallback), every
 * request finished with the same tokens as under the default plugins, no block leaked.
 */
export async function conformance(
  plugin: Plugin,
  options: { options?: Record<string, unknown>; requests?: number; seed?: number } = {},
): Promise<ConformanceResult[]> {
  const requests = conformanceWorkload(options.seed ?? 1, options.requests ?? 60);
  const out: ConformanceResult[] = [];
  const pools = [
    ["roomy pool", 1024, "recompute"],
    ["tight pool (preemptions)", 48, "recompute"],
    ["tight pool, swap preemption", 48, "swap"],
  ] as const;
  for (const [label, numBlocks, preemption] of pools) {
    const scenario: Scenario = { requests, numBlocks, preemption, options: options.options };
    let run: ScenarioResult, base: ScenarioResult;
    try {
      run = await testPlugin(plugin, scenario);
      base = await testPlugin(
        builtinRegistry().get(plugin.slot, builtinRegistry().slot(plugin.slot).defaultPlugin),
        { ...scenario, options: {} },
      );
    } catch (e) {
      out.push({ rule: `${label}: runs`, ok: false, detail: (e as Error).message });
      continue;
    }
    const unfinished = run.requests.filter((r) => r.reason === undefined).length;
    out.push({
      rule: `${label}: every request finishes`,
      ok: unfinished === 0,
      detail: `${unfinished} of ${requests.length} never finished`,
    });
    out.push({
      rule: `${label}: every plan is valid (no fallback to the default)`,
      ok: run.fallbacks.length === 0,
      detail: `fell back in: ${run.fallbacks.join(", ")}`,
    });
    out.push({
      rule: `${label}: no KV block leaked`,
      ok: run.leakedBlocks === 0 && run.leakedSwapBlocks === 0,
      detail: `${run.leakedBlocks} blocks and ${run.leakedSwapBlocks} host swap slots still held`,
    });
    const differing = run.requests.findIndex((r, i) =>
      r.reason !== "error" && r.tokens.join() !== base.requests[i].tokens.join()
    );
    out.push({
      rule: `${label}: the same tokens as the default plugins`,
      ok: differing < 0,
      detail: `request ${differing} differs`,
    });
  }
  return out;
}
