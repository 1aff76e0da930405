import assert from "node:assert/strict";
import fc from "fast-check";
import { Engine } from "../../core/engine.ts";
import { VirtualClock } from "../../core/clock.ts";
import { presetModel } from "../../core/model/load.ts";
import { builtinRegistry } from "../../plugins/builtins.ts";
import { definePlugin } from "../../plugins/define.ts";

// Batchers that take a token budget and a sequence cap under these option names.
const BUDGETED: Record<string, (tokens: number, seqs: number) => Record<string, unknown>> = {
  "vllm": (t, s) => ({ maxNumBatchedTokens: t, maxNumSeqs: s }),
  "prefill-first": (t, s) => ({ maxNumBatchedTokens: t, maxNumSeqs: s }),
};

const scripted = definePlugin({
  name: "scripted",
  slot: "executor",
  create: (_o, ctx) => ({
    simulated: true,
    run: (batch) => ({
      tokens: batch.sequences.map((s) =>
        !s.sample
          ? -1
          : s.outputIndex + 1 >= (s.hidden?.outputLength ?? 1)
          ? ctx.model.config.eosTokenIds[0]
          : 7
      ),
      duration: 0.001 * (1 + batch.numTokens / 64),
    }),
  }),
});

Deno.test("a batch never exceeds its token budget or sequence cap, and every plan is valid", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...Object.keys(BUDGETED)),
      fc.integer({ min: 300, max: 600 }),
      fc.integer({ min: 1, max: 12 }),
      fc.integer({ min: 40, max: 200 }),
      fc.array(
        fc.record({
          prompt: fc.integer({ min: 1, max: 280 }),
          output: fc.integer({ min: 1, max: 40 }),
          at: fc.nat({ max: 30 }),
        }),
        { minLength: 1, maxLength: 30 },
      ),
      async (batcher, tokens, seqs, numBlocks, reqs) => {
        const registry = builtinRegistry();
        registry.register(scripted);
        const engine = await Engine.create({
          model: presetModel("tiny"),
          registry,
          clock: new VirtualClock(),
          blockSize: 8,
          numBlocks,
          maxModelLen: 512,
          log: () => {},
          plugins: {
            executor: { name: "scripted" },
            batcher: { name: batcher, options: BUDGETED[batcher](tokens, seqs) },
          },
        });
        const violations: string[] = [];
        engine.onStep((r) => {
          if (r.numTokens > tokens) {
            violations.push(`step ${r.step}: ${r.numTokens} tokens > ${tokens}`);
          }
          if (r.numSeqs > seqs) violations.push(`step ${r.step}: ${r.numSeqs} requests > ${seqs}`);
          if (r.fallbacks.some((f) => f !== "stalled")) {
            violations.push(`step ${r.step}: fell back in ${r.fallbacks}`);
          }
          if (engine.pool.usedBlocks > numBlocks) violations.push("more blocks used than exist");
        });
        let finished = 0;
        const sorted = reqs.map((r, i) => ({ ...r, i })).sort((a, b) => a.at - b.at);
        for (let step = 0, next = 0; next < sorted.length || engine.hasWork; step++) {
          while (next < sorted.length && sorted[next].at <= step) {
            const r = sorted[next++];
            engine.add({
              promptTokens: Array.from({ length: r.prompt }, (_, k) => 3 + ((k * 17 + r.i) % 250)),
              hidden: { outputLength: r.output },
              sampling: { maxTokens: 64 },
            }, (ev) => {
              if (ev.type === "finish") finished++;
            });
          }
          await engine.step();
          assert.ok(step < 20000, "no progress");
        }
        assert.deepEqual(violations, []);
        assert.equal(finished, reqs.length);
        assert.equal(engine.pool.usedBlocks, 0);
      },
    ),
    { numRuns: 25 },
  );
});
