import assert from "node:assert/strict";
import { conformance, testPlugin } from "../../plugins/testing.ts";
import { BUILTIN_PLUGINS } from "../../plugins/builtins.ts";
import { definePlugin } from "../../plugins/define.ts";
import shortestPromptFirst from "../../examples/my_scheduler.ts";

const policies = BUILTIN_PLUGINS.filter((p) =>
  ["scheduler", "admission", "batcher", "kvcache"].includes(p.slot)
);

for (const plugin of [...policies, shortestPromptFirst]) {
  Deno.test(`conformance: ${plugin.slot} ${plugin.name}`, async () => {
    const failed = (await conformance(plugin)).filter((r) => !r.ok);
    assert.deepEqual(failed, []);
  });
}

Deno.test("conformance catches a batcher that leaks requests and one that breaks the rules", async () => {
  const lazy = definePlugin({
    name: "lazy",
    slot: "batcher",
    create: () => ({ plan: () => ({ scheduled: [], preempted: [] }) }),
  });
  const failed = (await conformance(lazy, { requests: 10 })).filter((r) => !r.ok).map((r) =>
    r.rule
  );
  assert.ok(
    failed.some((r) => r.includes("every request finishes")) ||
      failed.some((r) => r.includes("no fallback")),
    failed.join("; "),
  );
});

Deno.test("testPlugin reports times to first token and preemptions under a tight pool", async () => {
  const r = await testPlugin(shortestPromptFirst, {
    requests: [
      { promptLength: 400, outputLength: 5 },
      { promptLength: 10, outputLength: 5 },
      { promptLength: 20, outputLength: 5 },
    ],
    others: { batcher: { name: "vllm", options: { maxNumBatchedTokens: 64 } } },
  });
  assert.ok(r.requests.every((q) => q.reason === "stop" && q.tokens.length === 5));
  // Shortest first: the 10-token prompt gets its first token before the 400-token one.
  assert.ok(r.requests[1].ttft < r.requests[0].ttft);
  assert.equal(r.leakedBlocks, 0);
});
