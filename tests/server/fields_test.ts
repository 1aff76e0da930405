import assert from "node:assert/strict";
import { post, readSse, withServer } from "./helpers.ts";
import { builtinRegistry } from "../../plugins/builtins.ts";
import { definePlugin } from "../../plugins/define.ts";
import type { Scheduler } from "../../core/slots.ts";

Deno.test("fields: chat logprobs with top alternatives, one entry per token", async () => {
  await withServer({}, async ({ url }) => {
    const res = await post(`${url}/v1/chat/completions`, {
      messages: [{ role: "user", content: "hi" }],
      max_tokens: 6,
      ignore_eos: true,
      logprobs: true,
      top_logprobs: 3,
      seed: 5,
    });
    assert.equal(res.status, 200);
    const body = await res.json();
    const content = body.choices[0].logprobs.content;
    assert.equal(content.length, body.usage.completion_tokens);
    for (const t of content) {
      assert.equal(typeof t.token, "string");
      assert.ok(t.logprob <= 0);
      assert.equal(t.top_logprobs.length, 3);
      assert.deepEqual(t.bytes, [...new TextEncoder().encode(t.token)]);
      // Alternatives come most likely first.
      for (let i = 1; i < 3; i++) {
        assert.ok(t.top_logprobs[i - 1].logprob >= t.top_logprobs[i].logprob);
      }
    }
  });
});

Deno.test("fields: streamed completion logprobs arrive with every token", async () => {
  await withServer({}, async ({ url }) => {
    const res = await post(`${url}/v1/completions`, {
      prompt: "abc",
      max_tokens: 5,
      ignore_eos: true,
      logprobs: 2,
      stream: true,
    });
    const chunks = (await readSse(res)).slice(0, -1).map((e) => JSON.parse(e));
    const withLp = chunks.filter((c) => c.choices[0].logprobs !== null);
    assert.equal(withLp.length, 5);
    for (const c of withLp) {
      const lp = c.choices[0].logprobs;
      assert.equal(lp.tokens.length, 1);
      assert.equal(lp.token_logprobs.length, 1);
      assert.equal(Object.keys(lp.top_logprobs[0]).length <= 2, true);
    }
  });
});

Deno.test("fields: a stop string cuts the text before it and finishes with stop", async () => {
  await withServer({}, async ({ url }) => {
    const base = {
      prompt: "The quick brown fox",
      max_tokens: 40,
      temperature: 0,
      ignore_eos: true,
    };
    const free = await (await post(`${url}/v1/completions`, base)).json();
    const text: string = free.choices[0].text;
    // Pick a printable character that occurs after the start of the greedy text.
    const at = [...text].findIndex((ch, i) => i > 2 && /[\x21-\x7e]/.test(ch));
    assert.ok(at > 0, `no printable character in ${JSON.stringify(text)}`);
    const stop = [...text][at];
    const cut = text.slice(0, text.indexOf(stop));
    for (const stream of [false, true]) {
      const res = await post(`${url}/v1/completions`, { ...base, stop: [stop], stream });
      if (stream) {
        const chunks = (await readSse(res)).slice(0, -1).map((e) => JSON.parse(e));
        assert.equal(chunks.map((c) => c.choices[0].text).join(""), cut);
        assert.equal(chunks.at(-1).choices[0].finish_reason, "stop");
      } else {
        const body = await res.json();
        assert.equal(body.choices[0].text, cut);
        assert.equal(body.choices[0].finish_reason, "stop");
      }
    }
  });
});

Deno.test("fields: chat without max_tokens may use the rest of the context", async () => {
  await withServer({ engine: { maxModelLen: 96 } }, async ({ url }) => {
    const res = await post(`${url}/v1/chat/completions`, {
      messages: [{ role: "user", content: "hi" }],
      ignore_eos: true,
    });
    const body = await res.json();
    assert.equal(body.usage.prompt_tokens + body.usage.completion_tokens, 96);
    assert.equal(body.choices[0].finish_reason, "length");
  });
});

Deno.test("fields: several prompts and n give prompt-major choices and exact usage", async () => {
  await withServer({}, async ({ url }) => {
    const res = await post(`${url}/v1/completions`, {
      prompt: ["ab", "abcd"],
      n: 2,
      max_tokens: 3,
      ignore_eos: true,
    });
    const body = await res.json();
    assert.deepEqual(body.choices.map((c: { index: number }) => c.index), [0, 1, 2, 3]);
    // BOS plus the bytes, each prompt counted once.
    assert.equal(body.usage.prompt_tokens, 3 + 5);
    assert.equal(body.usage.completion_tokens, 12);
  });
});

Deno.test("fields: agent turns carry program_id, is_last_step and tool_name to the policies", async () => {
  const seen: { programId?: string; turn?: unknown }[] = [];
  const registry = builtinRegistry();
  registry.register(definePlugin({
    name: "turn-recorder",
    slot: "scheduler",
    create: (): Scheduler => ({
      order: (v) => ({ running: v.running, waiting: v.waiting }),
      onArrival: (r) => void seen.push({ programId: r.programId, turn: r.turn }),
    }),
  }));
  await withServer(
    { engine: { registry, plugins: { scheduler: { name: "turn-recorder" } } } },
    async ({ url }) => {
      const ask = (extra: Record<string, unknown>) =>
        post(`${url}/v1/completions`, { prompt: "ls", max_tokens: 2, ...extra });
      for (
        const extra of [
          { program_id: "job-1", tool_name: "bash" },
          { program_id: "job-1", is_last_step: true, user: "alice" },
          { user: "alice" },
        ]
      ) {
        const res = await ask(extra);
        assert.equal(res.status, 200);
        await res.body?.cancel();
      }
      assert.deepEqual(seen, [
        { programId: "job-1", turn: { tool: "bash" } },
        { programId: "job-1", turn: { last: true } },
        { programId: "alice", turn: undefined },
      ]);
      const bad = await ask({ tool_name: "" });
      assert.equal(bad.status, 400);
      const err = (await bad.json()).error;
      assert.equal(err.param, "tool_name");
      assert.equal(seen.length, 3);
    },
  );
});
