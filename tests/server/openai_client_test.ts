import assert from "node:assert/strict";
import OpenAI from "openai";
import { withServer } from "./helpers.ts";

const KEY = "test-key";

function client(url: string): OpenAI {
  return new OpenAI({ baseURL: `${url}/v1`, apiKey: KEY, maxRetries: 0 });
}

Deno.test("openai client: completion, not streamed, exact usage", async () => {
  await withServer({ apiKey: KEY }, async ({ url }) => {
    const c = client(url);
    const r = await c.completions.create({
      model: "tiny",
      prompt: "hello",
      max_tokens: 7,
      temperature: 0,
      ignore_eos: true,
    } as OpenAI.CompletionCreateParamsNonStreaming);
    assert.equal(r.object, "text_completion");
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0].finish_reason, "length");
    // "hello" is 5 bytes plus BOS under the byte tokenizer.
    assert.equal(r.usage?.prompt_tokens, 6);
    assert.equal(r.usage?.completion_tokens, 7);
    assert.equal(r.usage?.total_tokens, 13);
  });
});

Deno.test("openai client: chat streamed equals chat not streamed (greedy), usage exact", async () => {
  await withServer({ apiKey: KEY }, async ({ url }) => {
    const c = client(url);
    const params = {
      model: "tiny",
      messages: [{ role: "user" as const, content: "Say something." }],
      max_tokens: 12,
      temperature: 0,
      ignore_eos: true,
    };
    const whole = await c.chat.completions.create(
      params as OpenAI.ChatCompletionCreateParamsNonStreaming,
    );
    assert.equal(whole.object, "chat.completion");
    assert.equal(whole.choices[0].message.role, "assistant");
    assert.equal(whole.usage?.completion_tokens, 12);

    const stream = await c.chat.completions.create({
      ...params,
      stream: true,
      stream_options: { include_usage: true },
    } as OpenAI.ChatCompletionCreateParamsStreaming);
    let text = "";
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined | null;
    let role: string | undefined;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const ch of chunk.choices) {
        role ??= ch.delta.role;
        text += ch.delta.content ?? "";
        if (ch.finish_reason) finish = ch.finish_reason;
      }
    }
    assert.equal(role, "assistant");
    assert.equal(finish, "length");
    assert.equal(text, whole.choices[0].message.content);
    assert.equal(usage?.prompt_tokens, whole.usage?.prompt_tokens);
    assert.equal(usage?.completion_tokens, 12);
    // The second run finds the prompt's full blocks in the prefix cache.
    assert.equal(usage?.prompt_tokens_details?.cached_tokens, 32);
  });
});

Deno.test("openai client: completion streamed with n = 2 and a seed", async () => {
  await withServer({ apiKey: KEY }, async ({ url }) => {
    const c = client(url);
    const stream = await c.completions.create({
      model: "tiny",
      prompt: "abc",
      max_tokens: 5,
      n: 2,
      seed: 3,
      stream: true,
      stream_options: { include_usage: true },
      ignore_eos: true,
    } as OpenAI.CompletionCreateParamsStreaming);
    const finishes = new Map<number, string>();
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const ch of chunk.choices) {
        if (ch.finish_reason) finishes.set(ch.index, ch.finish_reason);
      }
    }
    assert.deepEqual([...finishes.entries()].sort(), [[0, "length"], [1, "length"]]);
    assert.equal(usage?.prompt_tokens, 4);
    assert.equal(usage?.completion_tokens, 10);
  });
});

Deno.test("openai client: aborting a stream aborts the request and frees its KV", async () => {
  await withServer({ apiKey: KEY }, async ({ url, engine }) => {
    const c = client(url);
    const ac = new AbortController();
    const stream = await c.chat.completions.create({
      model: "tiny",
      messages: [{ role: "user", content: "go on forever" }],
      max_tokens: 400,
      ignore_eos: true,
      stream: true,
    } as OpenAI.ChatCompletionCreateParamsStreaming, { signal: ac.signal });
    let seen = 0;
    try {
      for await (const chunk of stream) {
        if (chunk.choices[0]?.delta.content) seen++;
        if (seen === 3) ac.abort();
      }
    } catch {
      // The client reports the abort as an error or ends the iteration; both are fine.
    }
    assert.ok(seen >= 3);
    // The engine learns of the disconnect, ends the request and returns its blocks.
    const end = performance.now() + 5000;
    while ((engine.stats.numRunning > 0 || engine.pool.usedBlocks > 0) && performance.now() < end) {
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal(engine.stats.numRunning, 0);
    assert.equal(engine.pool.usedBlocks, 0);
    assert.equal(engine.stats.finished.abort, 1);
  });
});
