import assert from "node:assert/strict";
import { Engine } from "../../core/engine.ts";
import { VirtualClock } from "../../core/clock.ts";
import { presetModel } from "../../core/model/load.ts";
import type { Batch } from "../../core/types.ts";
import type { Executor } from "../../core/slots.ts";
import { builtinRegistry } from "../../plugins/builtins.ts";
import { definePlugin } from "../../plugins/define.ts";
import { parseOptions } from "../../plugins/options.ts";
import { referenceExecutor } from "../../kernels/reference/plugin.ts";
import { naiveGreedy } from "../../kernels/reference/naive.ts";

const model = presetModel("tiny", 5);
const SYSTEM = "You are a terse assistant. Answer in one line. ".repeat(2);

/** The reference executor, recording the steps that carried a shared prompt. */
function spy(seen: Batch[]) {
  return definePlugin({
    name: "spy",
    slot: "executor",
    create: async (_o, ctx): Promise<Executor> => {
      const inner = await referenceExecutor.create(
        parseOptions(referenceExecutor, {}) as never,
        ctx,
      );
      return {
        simulated: false,
        relay: true,
        run(batch) {
          if (batch.relay) seen.push(structuredClone(batch));
          return inner.run(batch);
        },
        swap: (out, into) => inner.swap!(out, into),
      };
    },
  });
}

async function serve(
  kvcache: { name: string; options?: Record<string, unknown> },
  numBlocks: number,
  seen: Batch[],
  preemption: "recompute" | "swap" = "recompute",
) {
  const registry = builtinRegistry();
  registry.register(spy(seen));
  const engine = await Engine.create({
    model,
    registry,
    clock: new VirtualClock(),
    blockSize: 4,
    numBlocks,
    preemption,
    log: () => {},
    plugins: {
      executor: { name: "spy" },
      kvcache,
      batcher: { name: "vllm", options: { maxNumBatchedTokens: 40 } },
    },
  });
  const prompts = [
    ...Array.from({ length: 5 }, (_, i) => SYSTEM + `question ${i}?`),
    "an unrelated prompt",
  ];
  const out = prompts.map(() => [] as number[]);
  prompts.forEach((p, i) =>
    engine.add(
      { prompt: p, sampling: { temperature: 0, maxTokens: 10, ignoreEos: true } },
      (ev) => {
        if (ev.type === "token") out[i].push(ev.token);
      },
    )
  );
  let peak = 0;
  while (engine.hasWork) {
    await engine.step();
    peak = Math.max(peak, engine.pool.usedBlocks);
  }
  return { out, peak, prompts, stats: engine.stats };
}

Deno.test("relay: requests after a shared system prompt get the tokens of ordinary attention, with fewer blocks", async () => {
  const seen: Batch[] = [];
  const relay = await serve({ name: "relay", options: { systemPrompt: SYSTEM } }, 200, seen);
  const plain = await serve({ name: "lru-prefix" }, 200, []);
  assert.deepEqual(relay.out, plain.out);
  const weights = await model.weights();
  relay.prompts.forEach((p, i) =>
    assert.deepEqual(
      relay.out[i],
      naiveGreedy(weights, model.config, model.tokenizer.encode(p, { addBos: true }), 10),
    )
  );
  assert.ok(seen.length > 0, "some steps carried the shared prompt");
  const shared = model.tokenizer.encode(SYSTEM, { addBos: true }).length;
  for (const b of seen) {
    assert.equal(b.relay!.tokens.length, shared);
    for (const s of b.sequences.filter((s) => s.prefixed)) assert.ok(s.startPos >= shared);
  }
  assert.ok(
    seen.some((b) => b.sequences.some((s) => !s.prefixed)),
    "the unrelated prompt runs unprefixed",
  );
  assert.ok(
    relay.peak < plain.peak,
    `relay held ${relay.peak} blocks at most, plain ${plain.peak}`,
  );
});

Deno.test("relay: preemption recomputes a prefixed request from after the shared prompt", async () => {
  const seen: Batch[] = [];
  // The pool holds one whole prompt (the validation rule), far less than five at once.
  const tight = await serve({ name: "relay", options: { systemPrompt: SYSTEM } }, 28, seen);
  const plain = await serve({ name: "lru-prefix" }, 200, []);
  assert.ok(tight.stats.preemptions > 0, "the small pool forced preemptions");
  assert.deepEqual(tight.out, plain.out);
});

Deno.test("relay with swap preemption gives ordinary attention's tokens and leaks no host slot", async () => {
  const tight = await serve(
    { name: "relay", options: { systemPrompt: SYSTEM } },
    28,
    [],
    "swap",
  );
  const plain = await serve({ name: "lru-prefix" }, 200, []);
  assert.ok(tight.stats.preemptions > 0, "the small pool forced preemptions");
  assert.deepEqual(tight.out, plain.out);
  assert.equal(tight.stats.swapBlocksUsed, 0);
});
