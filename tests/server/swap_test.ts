import assert from "node:assert/strict";
import { post, readSse, withServer } from "./helpers.ts";

const ADMIN = { Authorization: "Bearer a1" };
const STREAMS = 12;
const TOKENS = 24;

interface Outcome {
  text: string;
  tokens: number;
  finish: string;
}

async function streamOne(url: string, i: number): Promise<Outcome> {
  const res = await post(`${url}/v1/completions`, {
    prompt: `prompt number ${i} `.repeat(1 + (i % 3)),
    max_tokens: TOKENS,
    temperature: 0,
    ignore_eos: true,
    stream: true,
    stream_options: { include_usage: true },
  });
  assert.equal(res.status, 200);
  const events = await readSse(res);
  assert.equal(events.at(-1), "[DONE]");
  let text = "";
  let finish = "";
  let tokens = -1;
  for (const e of events.slice(0, -1)) {
    const c = JSON.parse(e);
    if (c.usage) tokens = c.usage.completion_tokens;
    for (const ch of c.choices) {
      text += ch.text;
      if (ch.finish_reason) finish = ch.finish_reason;
    }
  }
  return { text, tokens, finish };
}

async function swap(url: string, slot: string, name: string, options = {}): Promise<void> {
  const res = await fetch(`${url}/admin/plugins/${slot}`, {
    method: "PUT",
    headers: ADMIN,
    body: JSON.stringify({ name, options }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  await res.body?.cancel();
}

Deno.test("swap under streaming load loses no request and no token", async () => {
  await withServer({ adminKey: "a1" }, async ({ url, engine }) => {
    const run = () => Promise.all(Array.from({ length: STREAMS }, (_, i) => streamOne(url, i)));
    const reference = await run();
    for (const r of reference) {
      assert.equal(r.finish, "length");
      assert.equal(r.tokens, TOKENS);
    }

    let steps = 0;
    engine.onStep(() => steps++);
    const startSteps = steps;
    const swapped = run();
    // Swap every slot that decides, several times, while the streams run.
    const plan: [string, string, Record<string, unknown>][] = [
      ["scheduler", "priority", {}],
      ["batcher", "prefill-first", {}],
      ["batcher", "vllm", { maxNumSeqs: 3, maxNumBatchedTokens: 64 }],
      ["scheduler", "fcfs", {}],
      ["admission", "watermark", { watermark: 0.05 }],
      ["batcher", "vllm", {}],
    ];
    let underLoad = 0;
    for (const [slot, name, options] of plan) {
      await new Promise((r) => setTimeout(r, 3));
      await swap(url, slot, name, options);
      if (engine.hasWork) underLoad++;
    }
    const after = await swapped;
    assert.ok(steps - startSteps > plan.length);
    assert.equal(underLoad, plan.length, "every swap happened while streams ran");
    // Greedy decoding: the same text, token for token, whatever policy scheduled it.
    assert.deepEqual(after, reference);
    assert.equal(engine.stats.numRunning + engine.stats.numWaiting, 0);
  });
});
