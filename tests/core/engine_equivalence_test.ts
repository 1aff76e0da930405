import assert from "node:assert/strict";
import fc from "fast-check";
import { Engine } from "../../core/engine.ts";
import { presetModel } from "../../core/model/load.ts";
import { naiveGreedy } from "../../kernels/reference/naive.ts";
import type { RequestEvent } from "../../core/types.ts";

const model = presetModel("tiny", 3);
const weights = await model.weights();
const oracle = new Map<string, number[]>();
function alone(prompt: number[], n: number): number[] {
  const key = `${prompt.join(",")}/${n}`;
  let out = oracle.get(key);
  if (!out) oracle.set(key, out = naiveGreedy(weights, model.config, prompt, n));
  return out;
}

interface Job {
  prefix: number; // index of a shared prefix (prefix hits)
  tail: number[];
  maxTokens: number;
  arriveAtStep: number;
  abortAtStep: number | null;
}

const jobArb: fc.Arbitrary<Job> = fc.record({
  prefix: fc.nat({ max: 2 }),
  tail: fc.array(fc.integer({ min: 3, max: 258 }), { minLength: 1, maxLength: 12 }),
  maxTokens: fc.integer({ min: 1, max: 10 }),
  arriveAtStep: fc.nat({ max: 12 }),
  abortAtStep: fc.option(fc.nat({ max: 20 }), { freq: 5 }),
});

const PREFIXES = [
  Array.from({ length: 20 }, (_, i) => 3 + ((i * 37) % 250)),
  Array.from({ length: 9 }, (_, i) => 100 + i),
  [],
];

Deno.test({
  name:
    "continuous batching with chunks, prefix hits, preemption (recompute or swap), a host KV cache, speculative decoding and aborts gives each request's solo greedy tokens",
  sanitizeOps: false,
  fn: async () => {
    const seen = {
      preemptions: 0,
      prefixHits: 0,
      chunked: 0,
      swaps: 0,
      swapFallbacks: 0,
      hostHits: 0,
      accepted: 0,
    };
    await fc.assert(
      fc.asyncProperty(
        fc.array(jobArb, { minLength: 1, maxLength: 7 }),
        fc.integer({ min: 1, max: 24 }), // token budget: small budgets force chunked prefill
        fc.integer({ min: 6, max: 16 }), // KV blocks of 4 tokens: few blocks force preemption
        fc.constantFrom("vllm", "prefill-first"),
        fc.constantFrom("recompute" as const, "swap" as const),
        fc.integer({ min: 0, max: 12 }), // host swap blocks: few force the recompute fallback
        fc.constantFrom(0, 0, 6, 24), // host KV cache blocks (prefix-cache tier)
        fc.constantFrom("none", "ngram"), // speculative decoding by prompt lookup
        async (jobs, budget, numBlocks, batcher, preemption, swapBlocks, hostCache, spec) => {
          const engine = await Engine.create({
            model,
            blockSize: 4,
            numBlocks,
            preemption,
            swapBlocks,
            hostCacheBlocks: hostCache,
            plugins: {
              speculation: { name: spec, options: spec === "ngram" ? { k: 3 } : {} },
              // prefill-first refuses prompts over its budget (as vLLM v0): give it room.
              batcher: {
                name: batcher,
                options: { maxNumBatchedTokens: batcher === "vllm" ? budget : budget + 32 },
              },
            },
            log: () => {},
          });
          const results = new Map<
            string,
            { tokens: number[]; reason?: string; prompt: number[]; max: number }
          >();
          const ids: string[] = [];
          const maxStep = Math.max(...jobs.map((j) => j.arriveAtStep));
          for (let step = 0; step <= maxStep || engine.hasWork; step++) {
            jobs.forEach((j, k) => {
              if (j.arriveAtStep !== step) return;
              const prompt = [...PREFIXES[j.prefix], ...j.tail];
              // A prompt too large for the pool is refused up front; that is tested elsewhere.
              if (Math.ceil((prompt.length + j.maxTokens) / 4) > numBlocks - 1) return;
              const r = {
                tokens: [] as number[],
                prompt,
                max: j.maxTokens,
                reason: undefined as string | undefined,
              };
              const id = engine.add({
                id: `r${k}`,
                promptTokens: prompt,
                sampling: { temperature: 0, maxTokens: j.maxTokens, ignoreEos: true },
              }, (ev: RequestEvent) => {
                if (ev.type === "token") r.tokens.push(ev.token);
                else r.reason = ev.reason;
              });
              results.set(id, r);
              ids.push(id);
            });
            jobs.forEach((j, k) => {
              if (j.abortAtStep === step) engine.abort(`r${k}`);
            });
            await engine.step();
            assert.ok(step < 2000, "the engine made no progress");
          }
          for (const [id, r] of results) {
            assert.ok(r.reason, `${id} never finished`);
            const solo = alone(r.prompt, r.max);
            if (r.reason === "abort") {
              assert.deepEqual(r.tokens, solo.slice(0, r.tokens.length), `${id} before its abort`);
            } else {
              assert.equal(r.reason, "length");
              assert.deepEqual(
                r.tokens,
                solo,
                `${id} (${batcher}, budget ${budget}, ${numBlocks} blocks)`,
              );
            }
          }
          assert.equal(engine.pool.freeBlocks, numBlocks, "every block is free at the end");
          assert.equal(engine.stats.swapBlocksUsed, 0, "every host swap slot is free at the end");
          const st = engine.stats;
          if (preemption === "recompute") assert.equal(st.swapOuts, 0);
          seen.swaps += st.swapOuts;
          if (preemption === "swap") seen.swapFallbacks += st.preemptions - st.swapOuts;
          seen.preemptions += engine.stats.preemptions;
          seen.prefixHits += engine.stats.prefixHitTokens;
          seen.chunked += results.size > 0 && budget < 8 ? 1 : 0;
          seen.hostHits += st.hostHitTokens;
          seen.accepted += st.acceptedDraftTokens;
        },
      ),
      // A fixed seed: the same 60 cases every run, so the coverage checks below are stable.
      { numRuns: 80, seed: 20261126 },
    );
    // The runs must have exercised what the property is about.
    assert.ok(seen.preemptions > 0, "no run preempted");
    assert.ok(seen.prefixHits > 0, "no run hit the prefix cache");
    assert.ok(seen.chunked > 0, "no run chunked a prefill");
    assert.ok(seen.swaps > 0, "no run swapped");
    assert.ok(seen.swapFallbacks > 0, "no swap run fell back to recompute");
    assert.ok(seen.hostHits > 0, "no run copied a prefix back from the host tier");
    assert.ok(seen.accepted > 0, "no run accepted a draft");
  },
});
