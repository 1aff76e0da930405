import assert from "node:assert/strict";
import { lcg, runWorkload } from "../_harness.ts";

Deno.test("fastertransformer: a new batch starts only after the previous one has drained", async () => {
  const rand = lcg(3);
  const requests = Array.from({ length: 20 }, (_, i) => ({
    id: `r${i}`,
    prompt: rand(10, 100),
    output: rand(2, 50),
    arrival: i * 0.02,
    maxTokens: 64,
  }));
  const r = await runWorkload({
    plugins: {
      batcher: { name: "fastertransformer", options: { maxNumSeqs: 4, reserve: "max-tokens" } },
    },
    requests,
    numBlocks: 1000,
  });
  assert.equal(r.finishes.size, 20);
  const spans = [...r.finishes.values()].map((f) => [f.firstScheduledTime, f.time]);
  for (const [s1, e1] of spans) {
    for (const [s2] of spans) {
      // Anyone who started later than me started after I finished.
      if (s2 > s1) {
        assert.ok(s2 >= e1, `a request started at ${s2} while one from ${s1} ran until ${e1}`);
      }
    }
  }
  assert.ok(Math.max(...r.running) <= 4);
  assert.ok(Math.max(...r.running) >= 2, "requests were never batched together");
});
