import assert from "node:assert/strict";
import { post, readSse, until, withServer } from "./helpers.ts";

const A = { Authorization: "Bearer k1" };
const chat = { messages: [{ role: "user", content: "hi" }], max_tokens: 4 };

async function errorOf(res: Response) {
  const body = await res.json();
  assert.equal(typeof body.error.message, "string");
  assert.ok("type" in body.error && "param" in body.error && "code" in body.error);
  return body.error as { message: string; type: string; param: string | null; code: string | null };
}

Deno.test("errors: 400 on malformed JSON, empty body and non-object body", async () => {
  await withServer({ apiKey: "k1" }, async ({ url }) => {
    for (const body of ["{bad", "", "[1,2]", '"text"']) {
      const res = await post(`${url}/v1/chat/completions`, body, A);
      assert.equal(res.status, 400, `body ${JSON.stringify(body)}`);
      const e = await errorOf(res);
      assert.equal(e.type, "invalid_request_error");
    }
  });
});

Deno.test("errors: 400 names the bad field and what is allowed", async () => {
  await withServer({ apiKey: "k1" }, async ({ url }) => {
    const cases: [string, Record<string, unknown>, string, RegExp][] = [
      ["/v1/chat/completions", { ...chat, max_tokens: -3 }, "max_tokens", /from 1/],
      ["/v1/chat/completions", { ...chat, temperature: 9 }, "temperature", /0 to 2/],
      ["/v1/chat/completions", { ...chat, top_p: 0 }, "top_p", /\(0, 1\]/],
      ["/v1/chat/completions", { ...chat, n: 100 }, "n", /1 to 16/],
      [
        "/v1/chat/completions",
        { ...chat, messages: [{ role: "robot", content: "x" }] },
        "messages[0].role",
        /user/,
      ],
      ["/v1/chat/completions", { ...chat, messages: [] }, "messages", /at least one/],
      ["/v1/chat/completions", { ...chat, stream: "yes" }, "stream", /true or false/],
      ["/v1/completions", { prompt: 12 }, "prompt", /string/],
      ["/v1/completions", { prompt: "x", stop: [""] }, "stop", /empty/],
      ["/v1/completions", { prompt: [300] }, "prompt", /vocabulary/],
      [
        "/v1/completions",
        { prompt: "x", max_tokens: 100000 },
        "max_tokens",
        /context length is 512/,
      ],
      ["/v1/completions", { prompt: "x", logprobs: 50 }, "logprobs", /0 to 20/],
    ];
    for (const [path, body, param, allowed] of cases) {
      const res = await post(url + path, body, A);
      assert.equal(res.status, 400, JSON.stringify(body));
      const e = await errorOf(res);
      assert.equal(e.param, param, e.message);
      assert.match(e.message, allowed);
      assert.ok(e.message.includes(param), e.message);
    }
  });
});

Deno.test("errors: 404 unknown model, unknown route; 405 wrong method", async () => {
  await withServer({ apiKey: "k1" }, async ({ url }) => {
    let res = await post(`${url}/v1/chat/completions`, { ...chat, model: "gpt-9" }, A);
    assert.equal(res.status, 404);
    let e = await errorOf(res);
    assert.equal(e.param, "model");
    assert.equal(e.code, "model_not_found");
    res = await fetch(`${url}/v1/nothing`, { headers: A });
    assert.equal(res.status, 404);
    assert.equal((await errorOf(res)).code, "unknown_url");
    res = await fetch(`${url}/elsewhere`);
    assert.equal(res.status, 404);
    await res.body?.cancel();
    res = await fetch(`${url}/v1/chat/completions`, { headers: A });
    assert.equal(res.status, 405);
    e = await errorOf(res);
    assert.match(e.message, /POST/);
  });
});

Deno.test("errors: 413 for a body over the limit, declared or streamed", async () => {
  await withServer({ apiKey: "k1", maxBodyBytes: 1000 }, async ({ url }) => {
    const big = JSON.stringify({
      ...chat,
      messages: [{ role: "user", content: "x".repeat(5000) }],
    });
    let res = await post(`${url}/v1/chat/completions`, big, A);
    assert.equal(res.status, 413);
    assert.equal((await errorOf(res)).code, "request_too_large");
    // Without a Content-Length: a chunked body.
    const bytes = new TextEncoder().encode(big);
    const body = new ReadableStream({
      start(c) {
        for (let i = 0; i < bytes.length; i += 500) c.enqueue(bytes.slice(i, i + 500));
        c.close();
      },
    });
    res = await fetch(`${url}/v1/chat/completions`, { method: "POST", headers: A, body });
    assert.equal(res.status, 413);
    await res.body?.cancel();
  });
});

Deno.test("errors: 401 without or with a wrong key; health and metrics stay open", async () => {
  await withServer({ apiKey: "k1" }, async ({ url }) => {
    let res = await fetch(`${url}/v1/models`);
    assert.equal(res.status, 401);
    assert.equal((await errorOf(res)).code, "invalid_api_key");
    res = await fetch(`${url}/v1/models`, { headers: { Authorization: "Bearer k2" } });
    assert.equal(res.status, 401);
    await res.body?.cancel();
    res = await post(`${url}/v1/chat/completions`, chat);
    assert.equal(res.status, 401);
    await res.body?.cancel();
    res = await fetch(`${url}/v1/models`, { headers: A });
    assert.equal(res.status, 200);
    assert.equal((await res.json()).data[0].id, "tiny");
    res = await fetch(`${url}/health`);
    assert.equal(res.status, 200);
    await res.body?.cancel();
    res = await fetch(`${url}/metrics`);
    assert.equal(res.status, 200);
    await res.body?.cancel();
  });
});

Deno.test("errors: 429 with Retry-After when the waiting queue is full", async () => {
  // One sequence per step: the others wait.
  await withServer({
    maxWaiting: 2,
    engine: { plugins: { batcher: { name: "vllm", options: { maxNumSeqs: 1 } } } },
  }, async ({ url, engine }) => {
    const long = { ...chat, max_tokens: 200, ignore_eos: true, stream: true };
    const streams = [await post(`${url}/v1/chat/completions`, long)];
    await until(() => engine.stats.numRunning === 1);
    for (let i = 0; i < 2; i++) streams.push(await post(`${url}/v1/chat/completions`, long));
    const res = await post(`${url}/v1/chat/completions`, chat);
    assert.equal(res.status, 429);
    assert.equal(res.headers.get("retry-after"), "1");
    assert.equal((await errorOf(res)).code, "queue_full");
    for (const s of streams) {
      assert.equal(s.status, 200);
      await s.body?.cancel();
    }
  });
});

Deno.test("errors: 503 once shutdown has begun; the stream in flight still ends with [DONE]", async () => {
  await withServer({}, async ({ url, server }) => {
    const res = await post(`${url}/v1/completions`, {
      prompt: "a",
      max_tokens: 60,
      ignore_eos: true,
      stream: true,
    });
    assert.equal(res.status, 200);
    const closing = server.shutdown({ graceSeconds: 10 });
    const refused = await post(`${url}/v1/completions`, { prompt: "b", max_tokens: 2 });
    assert.equal(refused.status, 503);
    assert.equal((await errorOf(refused)).code, "shutting_down");
    const events = await readSse(res);
    assert.equal(events.at(-1), "[DONE]");
    const finish = events.slice(0, -1).map((e) => JSON.parse(e)).find((c) =>
      c.choices[0]?.finish_reason
    );
    assert.equal(finish.choices[0].finish_reason, "length");
    await closing;
  });
});

Deno.test("errors: shutdown past the grace ends streams with finish reason abort", async () => {
  await withServer({}, async ({ url, server }) => {
    const res = await post(`${url}/v1/completions`, {
      prompt: "a",
      max_tokens: 500,
      ignore_eos: true,
      stream: true,
    });
    const closing = server.shutdown({ graceSeconds: 0.05 });
    const events = await readSse(res);
    assert.equal(events.at(-1), "[DONE]");
    const reasons = events.slice(0, -1).map((e) => JSON.parse(e).choices[0]?.finish_reason)
      .filter(Boolean);
    assert.deepEqual(reasons, ["abort"]);
    await closing;
  });
});

Deno.test("errors: a bad request does not disturb a stream in flight", async () => {
  await withServer({ apiKey: "k1" }, async ({ url }) => {
    const body = { prompt: "same", max_tokens: 40, temperature: 0, ignore_eos: true, stream: true };
    const alone = await readSse(await post(`${url}/v1/completions`, body, A));
    const res = await post(`${url}/v1/completions`, body, A);
    const bad = await Promise.all([
      post(`${url}/v1/completions`, "{oops", A),
      post(`${url}/v1/completions`, { prompt: "x", top_k: -5 }, A),
      post(`${url}/v1/completions`, { prompt: "x", model: "nope" }, A),
    ]);
    assert.deepEqual(bad.map((r) => r.status), [400, 400, 404]);
    for (const r of bad) await r.body?.cancel();
    const text = (events: string[]) =>
      events.slice(0, -1).map((e) => JSON.parse(e).choices[0]?.text ?? "").join("");
    assert.equal(text(await readSse(res)), text(alone));
  });
});
