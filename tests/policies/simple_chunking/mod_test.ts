import assert from "node:assert/strict";
import { runWorkload } from "../_harness.ts";

Deno.test("simple-chunking: steps are prefill-only or decode-only and alternate while both have work", async () => {
  const r = await runWorkload({
    plugins: { batcher: { name: "simple-chunking", options: { chunkSize: 128 } } },
    requests: [
      ...Array.from({ length: 4 }, () => ({ prompt: 30, output: 40, arrival: 0 })),
      { id: "long", prompt: 1000, output: 3, arrival: 0.05 },
    ],
    numBlocks: 512,
  });
  assert.equal(r.finishes.size, 5);
  let alternations = 0;
  for (let i = 0; i < r.batches.length; i++) {
    const b = r.batches[i];
    const decodes = b.filter((q) => q.decode).length;
    assert.ok(decodes === 0 || decodes === b.length, `step ${i} mixes prompts and decodes`);
    if (decodes === 0) assert.ok(b.reduce((s, q) => s + q.tokens, 0) <= 128);
    const longNow = b.some((q) => q.id === "long" && !q.decode);
    if (longNow && i + 1 < r.batches.length && r.batches[i + 1].every((q) => q.decode)) {
      alternations++;
    }
  }
  // The long prompt needs 8 chunks; between them the four decodes run.
  assert.ok(alternations >= 7, `only ${alternations} prefill-decode alternations`);
});
