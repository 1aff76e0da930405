import assert from "node:assert/strict";
import { lcg, runWorkload } from "../_harness.ts";

Deno.test("reserve-max: the running requests' prompt-plus-cap reservations never exceed the pool", async () => {
  const rand = lcg(5);
  const requests = Array.from({ length: 60 }, (_, i) => ({
    id: `r${i}`,
    prompt: rand(20, 200),
    output: rand(5, 100),
    arrival: i * 0.02,
    maxTokens: rand(100, 400),
  }));
  const caps = new Map(requests.map((r) => [r.id, Math.ceil((r.prompt + r.maxTokens) / 16)]));
  let peak = 0;
  const r = await runWorkload({
    plugins: { admission: { name: "reserve-max" }, batcher: { name: "sarathi" } },
    requests,
    numBlocks: 100,
    extra: [],
  });
  // Replay the batches: who was running at each step, and their reservations.
  for (const batch of r.batches) {
    const reserved = batch.reduce((s, q) => s + caps.get(q.id)!, 0);
    peak = Math.max(peak, reserved);
  }
  assert.equal(r.finishes.size, 60);
  assert.equal(r.preemptions, 0);
  assert.ok(peak <= 100, `reservations reached ${peak} blocks of 100`);
  assert.ok(peak > 50, "the pool was never more than half reserved");
});

Deno.test("reserve-max: a fixed output budget replaces the request's cap", async () => {
  const requests = Array.from(
    { length: 8 },
    (_, i) => ({ id: `r${i}`, prompt: 16, output: 10, maxTokens: 4000 }),
  );
  // 64 blocks = 1,024 tokens: with a 112-token budget (128 with the prompt) 8 fit at once;
  // with each request's 4,000-token cap only one at a time.
  const fixed = await runWorkload({
    plugins: { admission: { name: "reserve-max", options: { outputBudget: 112 } } },
    requests,
    numBlocks: 64,
  });
  const capped = await runWorkload({
    plugins: { admission: { name: "reserve-max" } },
    requests,
    numBlocks: 64,
  });
  assert.equal(Math.max(...fixed.running), 8);
  assert.equal(Math.max(...capped.running), 1);
});
