import assert from "node:assert/strict";
import fc from "fast-check";
import { post, withServer } from "./helpers.ts";

// Values near the edges of what each field accepts, plus anything JSON can hold.
const edge = fc.oneof(
  fc.integer({ min: -3, max: 40 }),
  fc.constantFrom(0, -1, 1, 2 ** 31, 2 ** 53, 1e308, -1e308, 0.5, 1.5, 2.5),
  fc.boolean(),
  fc.constant(null),
  fc.string({ maxLength: 8 }),
  fc.array(fc.oneof(fc.integer({ min: -2, max: 300 }), fc.string({ maxLength: 4 })), {
    maxLength: 4,
  }),
  fc.jsonValue({ maxDepth: 2 }),
);

const fields = [
  "model",
  "prompt",
  "messages",
  "max_tokens",
  "max_completion_tokens",
  "temperature",
  "top_p",
  "top_k",
  "seed",
  "stop",
  "stream",
  "stream_options",
  "logprobs",
  "top_logprobs",
  "n",
  "user",
  "ignore_eos",
  "priority",
  "best_of",
  "stop_token_ids",
];

const message = fc.record({
  role: fc.oneof(
    { weight: 5, arbitrary: fc.constantFrom("user", "system", "assistant", "tool") },
    { weight: 1, arbitrary: fc.string({ maxLength: 5 }) },
  ),
  content: fc.oneof(
    { weight: 5, arbitrary: fc.string({ maxLength: 12 }) },
    { weight: 1, arbitrary: edge },
  ),
});

// A valid body for either endpoint, with zero to two fields bent.
const valid = fc.record({
  prompt: fc.string({ minLength: 1, maxLength: 12 }),
  messages: fc.array(message, { minLength: 1, maxLength: 3 }),
  max_tokens: fc.integer({ min: 1, max: 8 }),
  stream: fc.boolean(),
});
const body = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.tuple(valid, fc.dictionary(fc.constantFrom(...fields), edge, { maxKeys: 2 })),
  },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => [v, {}] as const) },
).map(([b, bent]) =>
  JSON.stringify(typeof b === "object" && b !== null && !Array.isArray(b) ? { ...b, ...bent } : b)
);

const raw = fc.oneof(
  { weight: 8, arbitrary: body },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 1, arbitrary: fc.constantFrom("{", "", "[]", "null") },
);

Deno.test("fuzz: request bodies never get a 5xx and the server keeps serving", async () => {
  await withServer({ engine: { maxModelLen: 128 } }, async ({ url }) => {
    await fc.assert(
      fc.asyncProperty(
        raw,
        fc.constantFrom("/v1/completions", "/v1/chat/completions"),
        async (b, path) => {
          const res = await post(url + path, b);
          const text = await res.text();
          assert.ok(res.status < 500, `${res.status} for ${b}: ${text}`);
          if (res.status >= 400) {
            const e = JSON.parse(text).error;
            assert.equal(typeof e.message, "string");
          }
        },
      ),
      { numRuns: 150, seed: 42 },
    );
    const ok = await post(`${url}/v1/completions`, { prompt: "still here", max_tokens: 3 });
    assert.equal(ok.status, 200);
    assert.equal((await ok.json()).usage.completion_tokens, 3);
  });
});
