import assert from "node:assert/strict";
import { builtinRegistry } from "../../plugins/builtins.ts";
import { post, readSse, withServer } from "./helpers.ts";

function registry() {
  return builtinRegistry();
}

Deno.test("sim executor on the wall clock: each step sleeps for its predicted duration", async () => {
  await withServer({
    engine: {
      registry: registry(),
      plugins: {
        executor: { name: "sim", options: { gpu: "h100", realtime: true, stepOverhead: 0.004 } },
      },
    },
  }, async ({ url }) => {
    const t0 = performance.now();
    const res = await post(`${url}/v1/completions`, {
      prompt: "hello",
      max_tokens: 20,
      ignore_eos: true,
      stream: true,
      stream_options: { include_usage: true },
    });
    const events = await readSse(res);
    const ms = performance.now() - t0;
    assert.equal(events.at(-1), "[DONE]");
    assert.equal(JSON.parse(events.at(-2)!).usage.completion_tokens, 20);
    // 20 steps of at least 4 ms of overhead each.
    assert.ok(ms >= 80, `took ${ms} ms`);
  });
});
