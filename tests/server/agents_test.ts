import assert from "node:assert/strict";
import { post, withServer } from "./helpers.ts";

Deno.test("agents: a program's next chat turn is served from its pinned context", async () => {
  await withServer({
    engine: {
      plugins: {
        scheduler: { name: "program-fcfs" },
        kvcache: { name: "ttl", options: { mode: "fixed" } },
      },
    },
  }, async ({ url, engine }) => {
    const system = { role: "system", content: "You are a coding agent. ".repeat(6) };
    const task = { role: "user", content: "List the files of the repository." };
    const turn = async (messages: unknown[], extra: Record<string, unknown>) => {
      const res = await post(`${url}/v1/chat/completions`, {
        messages,
        max_tokens: 8,
        temperature: 0,
        program_id: "agent-1",
        ...extra,
      });
      assert.equal(res.status, 200);
      return await res.json();
    };
    const first = await turn([system, task], { tool_name: "ls" });
    assert.equal(first.usage.prompt_tokens_details.cached_tokens, 0);
    assert.ok(engine.stats.numRunning === 0);
    const reply = { role: "assistant", content: first.choices[0].message.content };
    const observation = { role: "user", content: "README.md main.ts core/ tests/" };
    const second = await turn([system, task, reply, observation], { is_last_step: true });
    // At least the system prompt and the task come from the first turn's KV.
    const cached = second.usage.prompt_tokens_details.cached_tokens;
    assert.ok(cached >= 160, `${cached} cached tokens`);
    assert.ok(cached < second.usage.prompt_tokens);
  });
});
