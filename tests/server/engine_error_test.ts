import assert from "node:assert/strict";
import { builtinRegistry } from "../../plugins/builtins.ts";
import { definePlugin } from "../../plugins/define.ts";
import type { Batch, StepOutput } from "../../core/types.ts";
import { post, readSse, withServer } from "./helpers.ts";

// An executor that produces a few tokens, then fails every step.
const flaky = definePlugin({
  name: "flaky",
  slot: "executor",
  create: () => {
    let steps = 0;
    return {
      simulated: false,
      run(batch: Batch): StepOutput {
        if (++steps > 3) throw new Error("device lost");
        return { tokens: batch.sequences.map((s) => (s.sample ? 68 : -1)) };
      },
    };
  },
});

function registry() {
  const r = builtinRegistry();
  r.register(flaky as never);
  return r;
}

Deno.test("an executor failure ends streams with an explicit error, never silence", async () => {
  await withServer(
    { engine: { registry: registry(), plugins: { executor: { name: "flaky" } } } },
    async ({ url }) => {
      const res = await post(`${url}/v1/completions`, {
        prompt: "x",
        max_tokens: 50,
        ignore_eos: true,
        stream: true,
      });
      assert.equal(res.status, 200);
      const events = await readSse(res);
      assert.equal(events.at(-1), "[DONE]");
      const error = JSON.parse(events.at(-2)!).error;
      assert.match(error.message, /device lost/);
      assert.equal(error.type, "server_error");

      const whole = await post(`${url}/v1/completions`, { prompt: "y", max_tokens: 5 });
      assert.equal(whole.status, 500);
      assert.match((await whole.json()).error.message, /device lost/);
    },
  );
});
