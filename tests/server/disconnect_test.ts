import assert from "node:assert/strict";
import { until, withServer } from "./helpers.ts";

for (const stream of [true, false]) {
  Deno.test(`disconnect: a client gone ${stream ? "mid-stream" : "before the answer"} aborts its requests and frees their KV`, async () => {
    await withServer({}, async ({ url, engine }) => {
      const ac = new AbortController();
      const pending = fetch(`${url}/v1/completions`, {
        method: "POST",
        body: JSON.stringify({ prompt: "x", max_tokens: 480, n: 2, ignore_eos: true, stream }),
        signal: ac.signal,
      }).then(async (res) => {
        // Read a little of the stream, let some tokens be generated, then hang up.
        const reader = res.body!.getReader();
        await reader.read();
        await until(() => engine.stats.generationTokens >= 4);
        ac.abort();
        await reader.cancel().catch(() => {});
      }).catch(() => {});
      await until(() => engine.stats.generationTokens >= 4);
      if (!stream) ac.abort();
      await pending;
      await until(() => engine.stats.finished.abort === 2);
      await until(() => engine.pool.usedBlocks === 0);
      assert.equal(engine.stats.numRunning + engine.stats.numWaiting, 0);
      assert.ok(engine.stats.generationTokens < 2 * 480);
    });
  });
}
