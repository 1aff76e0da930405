import assert from "node:assert/strict";
import { lcg, runWorkload, type TestRequest } from "../_harness.ts";

const one = { name: "sarathi", options: { maxNumSeqs: 1 } };

Deno.test("oracle-sjf: a burst finishes in order of true output length", async () => {
  const rand = lcg(4);
  const requests: TestRequest[] = Array.from({ length: 15 }, (_, i) => ({
    id: `r${i}`,
    prompt: rand(5, 50),
    output: 10 + i * 7 + rand(0, 5),
    arrival: 0,
  })).reverse();
  const r = await runWorkload({
    plugins: { scheduler: { name: "oracle-sjf", options: { maxNumSeqs: 1 } }, batcher: one },
    requests,
  });
  const byEnd = [...r.finishes.values()].sort((a, b) => a.time - b.time).map((f) =>
    f.usage.completionTokens
  );
  assert.deepEqual(byEnd, [...byEnd].sort((a, b) => a - b));
});

Deno.test("oracle-srtf keeps a nearly done long request where oracle-sjf preempts it", async () => {
  const requests: TestRequest[] = [
    { id: "long", prompt: 10, output: 100, arrival: 0 },
    // Arrives when the long one has about 90 tokens: 10 left against 20.
    { id: "new", prompt: 10, output: 20, arrival: 0.9 },
  ];
  const run = (scheduler: string) =>
    runWorkload({
      plugins: { scheduler: { name: scheduler, options: { maxNumSeqs: 1 } }, batcher: one },
      requests,
    });
  const srtf = await run("oracle-srtf");
  const sjf = await run("oracle-sjf");
  assert.equal(srtf.preemptions, 0);
  assert.ok(srtf.finishes.get("long")!.time < srtf.finishes.get("new")!.time);
  assert.ok(sjf.preemptions >= 1);
  assert.ok(sjf.finishes.get("new")!.time < sjf.finishes.get("long")!.time);
});
