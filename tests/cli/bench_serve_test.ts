import assert from "node:assert/strict";
import { main } from "../../cli/bench_serve.ts";
import { withServer } from "../server/helpers.ts";

async function quietly<T>(fn: () => Promise<T>): Promise<T> {
  const log = console.log;
  const error = console.error;
  console.log = () => {};
  console.error = () => {};
  try {
    return await fn();
  } finally {
    console.log = log;
    console.error = error;
  }
}

Deno.test("bench-serve: vLLM result JSON with exact token counts", async () => {
  await withServer({ apiKey: "k" }, async ({ url }) => {
    const dir = await Deno.makeTempDir();
    try {
      const code = await quietly(() =>
        main([
          "--url",
          url,
          "--api-key",
          "k",
          "--num-prompts",
          "6",
          "--rate",
          "50",
          "--seed",
          "1",
          "--random-input-len",
          "20",
          "--random-output-len",
          "5",
          "--max-concurrency",
          "3",
          "--goodput",
          "ttft:60000",
          "--result-dir",
          dir,
          "--result-filename",
          "r.json",
          "--save-detailed",
          "--metadata",
          "run=test",
        ])
      );
      assert.equal(code, 0);
      const r = JSON.parse(await Deno.readTextFile(`${dir}/r.json`));
      assert.equal(r.backend, "openai");
      assert.equal(r.model_id, "tiny");
      assert.equal(r.num_prompts, 6);
      assert.equal(r.request_rate, 50);
      assert.equal(r.max_concurrency, 3);
      assert.equal(r.run, "test");
      assert.equal(r.completed, 6);
      assert.equal(r.failed, 0);
      assert.equal(r.total_input_tokens, 120);
      assert.equal(r.total_output_tokens, 30);
      assert.deepEqual(r.output_lens, [5, 5, 5, 5, 5, 5]);
      assert.ok(r.request_goodput > 0);
      for (
        const k of [
          "mean_ttft_ms",
          "median_ttft_ms",
          "std_ttft_ms",
          "p99_ttft_ms",
          "mean_tpot_ms",
          "p99_itl_ms",
        ]
      ) {
        assert.equal(typeof r[k], "number", k);
      }
      assert.ok(r.max_concurrent_requests <= 6);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("bench-serve: chat endpoint and a named workload", async () => {
  await withServer({}, async ({ url }) => {
    const dir = await Deno.makeTempDir();
    try {
      const code = await quietly(() =>
        main([
          "--url",
          url,
          "--endpoint",
          "/v1/chat/completions",
          "--workload",
          "sharegpt",
          "--num-prompts",
          "3",
          "--result-dir",
          dir,
          "--result-filename",
          "c.json",
        ])
      );
      assert.equal(code, 0);
      const r = JSON.parse(await Deno.readTextFile(`${dir}/c.json`));
      assert.equal(r.backend, "openai-chat");
      assert.equal(r.completed, 3);
      assert.equal(r.request_rate, "inf");
      assert.ok(!("ttfts" in r));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("bench-serve: bad flags are usage errors", async () => {
  await assert.rejects(() => main(["--rate", "-1"]), /--rate/);
  await assert.rejects(() => main(["--url", "ftp://x"]), /--url/);
  await assert.rejects(() => main(["--url", "http://127.0.0.1:1"]), /cannot reach/);
});
