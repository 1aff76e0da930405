import assert from "node:assert/strict";
import { post, withServer } from "./helpers.ts";

Deno.test("speculation: a server with prompt lookup answers as without it and counts drafts", async () => {
  const body = {
    prompt: "abcabcabcabcabcabc",
    max_tokens: 24,
    temperature: 0,
    ignore_eos: true,
  };
  let plain = "";
  await withServer({}, async ({ url }) => {
    plain = (await (await post(`${url}/v1/completions`, body)).json()).choices[0].text;
  });
  await withServer(
    { engine: { plugins: { executor: { name: "reference" }, speculation: { name: "ngram" } } } },
    async ({ url }) => {
      const res = await post(`${url}/v1/completions`, body);
      assert.equal(res.status, 200);
      assert.equal((await res.json()).choices[0].text, plain);
      const page = await (await fetch(`${url}/metrics`)).text();
      const value = (name: string) =>
        Number(page.match(new RegExp(`^${name}\\{[^}]*\\} (\\S+)`, "m"))?.[1]);
      assert.ok(value("vllm:spec_decode_num_draft_tokens_total") > 0, page);
      assert.ok(
        value("vllm:spec_decode_num_accepted_tokens_total") <=
          value("vllm:spec_decode_num_draft_tokens_total"),
      );
    },
  );
});
