/**
 * Decision time of every built-in scheduling plugin per step, at 256 running and 1,000
 * waiting requests, with an executor that does nothing (so only the policies and the
 * engine's bookkeeping are measured). Target: under 0.1 ms per step (vLLM v1's
 * `schedule()` costs about 0.1 to 0.3 ms).
 *
 * @module
 */

import { Engine } from "../core/engine.ts";
import { VirtualClock } from "../core/clock.ts";
import { presetModel } from "../core/model/load.ts";
import { builtinRegistry } from "../plugins/builtins.ts";
import { definePlugin } from "../plugins/define.ts";

const RUNNING = 256, WAITING = 1000, PROMPT = 100, STEPS = 300;

/** Options that hold a plugin at the same 256 running requests as the others. */
const OPTIONS: Record<string, Record<string, unknown>> = {
  "lightllm-router": { maxNumSeqs: RUNNING }, // its default admits up to 1,000
};

const idle = definePlugin({
  name: "idle",
  slot: "executor",
  description: "does nothing; a decode never ends",
  create: () => ({
    simulated: true,
    run: (batch) => ({ tokens: batch.sequences.map((s) => (s.sample ? 7 : -1)), duration: 0.02 }),
  }),
});

/** Time one plugin (others at their defaults); undefined if it cannot run here. */
async function measure(
  slot: string,
  name: string,
): Promise<
  | { mean: number; median: number; p99: number; running: number; waiting: number; total: number }
  | undefined
> {
  const registry = builtinRegistry();
  registry.register(idle);
  const model = presetModel("tiny");
  const plugins: Record<string, { name: string; options?: Record<string, unknown> }> = {
    executor: { name: "idle" },
    [slot]: { name, options: OPTIONS[name] },
  };
  let engine: Engine;
  try {
    engine = await Engine.create({
      model,
      registry,
      plugins,
      clock: new VirtualClock(),
      maxModelLen: 8192,
      numBlocks: Math.ceil((RUNNING * (PROMPT + 2 * STEPS + 200)) / 16) + 64,
      log: () => {},
    });
  } catch (e) {
    console.log(`${slot.padEnd(10)} ${name.padEnd(22)} skipped: ${(e as Error).message}`);
    return undefined;
  }
  for (let i = 0; i < RUNNING + WAITING; i++) {
    const promptTokens = Array.from(
      { length: PROMPT + (i % 50) },
      (_, k) => 3 + ((i * 31 + k * 7) % 250),
    );
    engine.add({
      promptTokens,
      sampling: { maxTokens: 100000, ignoreEos: true },
      arrivalTime: i * 1e-3,
    }, () => {});
  }
  // Fill the running set (the batchers admit at most 256), then measure steady decode steps.
  for (let i = 0; i < 200 && engine.running.length < RUNNING; i++) await engine.step();
  const times: number[] = [];
  engine.onStep((r) => times.push(Object.values(r.decisionTime).reduce((a, b) => a + b, 0)));
  for (let i = 0; i < STEPS; i++) await engine.step();
  const warm = times.slice(50).sort((a, b) => a - b);
  const mean = warm.reduce((a, b) => a + b, 0) / warm.length;
  return {
    mean,
    median: warm[Math.floor(warm.length / 2)],
    p99: warm[Math.floor(warm.length * 0.99)],
    running: engine.running.length,
    waiting: engine.waiting.length,
    total: times.length,
  };
}

/** Run the benchmark. */
export async function main(_args: string[]): Promise<void> {
  const registry = builtinRegistry();
  await measure("scheduler", "fcfs"); // warm the JIT so the first row is not penalised
  console.log(
    `decision time per step, ${RUNNING} running and ${WAITING} waiting requests (target < 0.1 ms)`,
  );
  console.log(
    `${"slot".padEnd(10)} ${"plugin".padEnd(22)} ${"mean ms".padStart(8)} ${"median".padStart(8)} ${
      "p99 ms".padStart(8)
    }  running/waiting  vs target`,
  );
  for (const slot of ["scheduler", "admission", "batcher"]) {
    for (const p of registry.plugins(slot)) {
      const m = await measure(slot, p.name);
      if (!m) continue;
      const target = ["ltr", "past-future"].includes(p.name) ? 0.2 : 0.1;
      console.log(
        `${slot.padEnd(10)} ${p.name.padEnd(22)} ${(m.mean * 1e3).toFixed(4).padStart(8)} ${
          (m.median * 1e3).toFixed(4).padStart(8)
        } ${(m.p99 * 1e3).toFixed(4).padStart(8)}  ${`${m.running}/${m.waiting}`.padEnd(15)}  ${
          (m.mean * 1e3 / target).toFixed(2)
        }x of ${target} ms`,
      );
    }
  }
}
