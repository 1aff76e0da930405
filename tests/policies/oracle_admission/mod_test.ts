import assert from "node:assert/strict";
import { lcg, runWorkload } from "../_harness.ts";

Deno.test("oracle admission: the true future peak always fits, so a tight pool never preempts", async () => {
  const rand = lcg(12);
  for (const numBlocks of [40, 80, 160]) {
    const requests = Array.from({ length: 80 }, (_, i) => ({
      prompt: rand(10, 150),
      output: rand(1, 250),
      arrival: i * 0.01,
      maxTokens: 2000,
    }));
    const r = await runWorkload({
      plugins: { admission: { name: "oracle" }, batcher: { name: "sarathi" } },
      requests,
      numBlocks,
    });
    assert.equal(r.finishes.size, 80);
    assert.equal(r.preemptions, 0, `${r.preemptions} preemptions with ${numBlocks} blocks`);
    // The batch still holds several requests at once.
    assert.ok(Math.max(...r.running) >= 2);
  }
});
