import assert from "node:assert/strict";
import { runWorkload, type TestRequest } from "../_harness.ts";

const one = { name: "sarathi", options: { maxNumSeqs: 1 } };
const requests: TestRequest[] = [
  { id: "long", prompt: 20, output: 400, arrival: 0 },
  { id: "short", prompt: 20, output: 5, arrival: 1 },
];

Deno.test("mlfq: a request that has had its service drops below a newcomer, which runs first", async () => {
  const m = await runWorkload({
    plugins: { scheduler: { name: "mlfq", options: { maxNumSeqs: 1 } }, batcher: one },
    requests,
  });
  assert.ok(m.finishes.get("short")!.time < m.finishes.get("long")!.time);
  assert.equal(m.finishes.get("long")!.numPreemptions, 1);
  const f = await runWorkload({ plugins: { batcher: one }, requests });
  assert.ok(f.finishes.get("short")!.time > f.finishes.get("long")!.time);
});

Deno.test("mlfq: with a quantum longer than the request's service, nothing is preempted", async () => {
  const m = await runWorkload({
    plugins: {
      scheduler: { name: "mlfq", options: { maxNumSeqs: 1, baseQuantum: 100 } },
      batcher: one,
    },
    requests,
  });
  assert.equal(m.preemptions, 0);
  assert.ok(m.finishes.get("short")!.time > m.finishes.get("long")!.time);
});
