import assert from "node:assert/strict";
import { lcg, runWorkload } from "../_harness.ts";

const rand = lcg(7);
const burst = Array.from(
  { length: 30 },
  () => ({ prompt: rand(20, 200), output: rand(5, 80), arrival: 0 }),
);

Deno.test("orca: reserving the model's maximum length keeps the batch to what the pool can hold", async () => {
  // 1024-token context, 16-token blocks: 64 blocks per request; a 300-block pool holds 4.
  const r = await runWorkload({
    plugins: { batcher: { name: "orca", options: { maxNumSeqs: 16 } } },
    requests: burst,
    numBlocks: 300,
    maxModelLen: 1024,
  });
  assert.equal(r.finishes.size, 30);
  assert.equal(Math.max(...r.running), 4);
  assert.equal(r.preemptions, 0);
});

Deno.test("orca: whole prompts join running decodes in one hybrid step", async () => {
  const r = await runWorkload({
    plugins: { batcher: { name: "orca", options: { maxNumSeqs: 16, reserve: "max-tokens" } } },
    requests: [
      { id: "a", prompt: 50, output: 40, arrival: 0, maxTokens: 50 },
      { id: "b", prompt: 700, output: 5, arrival: 0.05, maxTokens: 50 },
    ],
    numBlocks: 256,
  });
  const withB = r.batches.filter((b) => b.some((q) => q.id === "b" && !q.decode));
  // b's 700-token prompt runs in one step, next to a's decode.
  assert.equal(withB.length, 1);
  assert.equal(withB[0].find((q) => q.id === "b")!.tokens, 700);
  assert.ok(withB[0].some((q) => q.id === "a" && q.decode));
});

Deno.test("orca: the batch-size cap holds", async () => {
  const r = await runWorkload({
    plugins: { batcher: { name: "orca", options: { maxNumSeqs: 3, reserve: "max-tokens" } } },
    requests: burst.map((q) => ({ ...q, maxTokens: 100 })),
    numBlocks: 2000,
  });
  assert.equal(r.finishes.size, 30);
  assert.equal(Math.max(...r.running), 3);
});
