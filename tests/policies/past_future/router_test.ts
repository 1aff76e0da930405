import assert from "node:assert/strict";
import { lcg, runWorkload, type TestRequest } from "../_harness.ts";
import { lightllmRouter } from "../../../policies/past_future/router.ts";

const rand = lcg(5);
const requests: TestRequest[] = Array.from({ length: 60 }, (_, i) => ({
  prompt: rand(40, 300),
  output: rand(5, 120),
  arrival: i * 0.02,
  maxTokens: 1000,
}));

const run = (
  options: Record<string, unknown>,
  admission = "watermark",
  reqs = requests,
  numBlocks = 200,
) =>
  runWorkload({
    plugins: {
      admission: { name: admission },
      batcher: { name: "lightllm-router", options },
    },
    requests: reqs,
    numBlocks,
    extra: [lightllmRouter],
  });

/** Kind of each step: "P" a prefill round, "D" a decode step. */
function kinds(batches: { decode: boolean }[][]): string {
  return batches.map((b) => b.some((s) => !s.decode) ? "P" : "D").join("");
}

Deno.test("lightllm-router: prefill rounds hold whole prompts and no decodes", async () => {
  const r = await run({ batchMaxTokens: 1024, maxWaitTokens: 2 }, "watermark", requests, 4000);
  assert.equal(r.finishes.size, 60);
  assert.equal(r.preemptions, 0);
  for (const f of r.finishes.values()) assert.notEqual(f.reason, "error");
  const prompt = new Map(requests.map((q, i) => [`q${i}`, q.prompt as number]));
  let rounds = 0;
  for (const b of r.batches) {
    if (b.every((s) => s.decode)) continue;
    rounds++;
    assert.ok(b.every((s) => !s.decode), "a prefill round carries no decode");
    assert.ok(b.reduce((n, s) => n + s.tokens, 0) <= 1024);
    // Nothing is preempted, so every prompt runs whole, once.
    for (const s of b) assert.equal(s.tokens, prompt.get(s.id));
  }
  assert.ok(rounds > 1 && rounds < 60, `${rounds} rounds`);
  assert.ok(r.batches.some((b) => b.filter((s) => !s.decode).length > 1), "a round admits several");
});

Deno.test("lightllm-router: at least maxWaitTokens decode steps between rounds while requests run", async () => {
  for (const wait of [1, 2, 4]) {
    const r = await run({ batchMaxTokens: 512, maxWaitTokens: wait });
    assert.equal(r.finishes.size, 60);
    const k = kinds(r.batches);
    const gaps = [...k.matchAll(/P(D*)(?=P)/g)].map((m) => m[1].length);
    assert.ok(gaps.length > 3);
    // A round right after the batch drained needs no wait; otherwise the gap is kept.
    const running = r.running;
    let step = 0;
    for (const m of k.matchAll(/P(D*)(?=P)/g)) {
      step = m.index! + 1 + m[1].length;
      if (running[step - 1] > 0) {
        assert.ok(m[1].length >= wait, `gap ${m[1].length} < ${wait} before step ${step}`);
      }
    }
  }
});

Deno.test("lightllm-router: a prompt over the round budget is refused, the rest are served", async () => {
  const reqs: TestRequest[] = [
    { prompt: 100, output: 10 },
    { prompt: 900, output: 10, arrival: 0.01 },
    { prompt: 100, output: 10, arrival: 0.02 },
  ];
  const r = await run({ batchMaxTokens: 512 }, "watermark", reqs);
  assert.equal(r.finishes.get("q1")?.reason, "error");
  assert.equal(r.finishes.get("q0")?.reason, "stop");
  assert.equal(r.finishes.get("q2")?.reason, "stop");
});

Deno.test("lightllm-router composes with past-future admission", async () => {
  const r = await run({ batchMaxTokens: 2048 }, "past-future");
  assert.equal(r.finishes.size, 60);
  for (const f of r.finishes.values()) assert.equal(f.reason, "stop");
});
