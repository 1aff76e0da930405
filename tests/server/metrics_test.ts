import assert from "node:assert/strict";
import { Histogram, ServerMetrics } from "../../server/metrics.ts";
import { post, withServer } from "./helpers.ts";

function sample(page: string, name: string): number {
  const line = page.split("\n").find((l) => l.startsWith(name + "{") || l.startsWith(name + " "));
  assert.ok(line, `no sample ${name}`);
  return Number(line.slice(line.lastIndexOf(" ") + 1));
}

Deno.test("metrics: histogram buckets are cumulative with +Inf, sum and count", () => {
  const h = new Histogram([0.1, 1]);
  for (const v of [0.05, 0.1, 0.5, 3]) h.observe(v);
  const m = new ServerMetrics("m");
  m.ttft.observe(0.05);
  const page = m.render({});
  assert.match(page, /vllm:time_to_first_token_seconds_bucket\{model_name="m",le="0\.001"\} 0/);
  assert.match(page, /vllm:time_to_first_token_seconds_bucket\{model_name="m",le="0\.06"\} 1/);
  assert.match(page, /vllm:time_to_first_token_seconds_bucket\{model_name="m",le="\+Inf"\} 1/);
  assert.deepEqual([...h.counts], [2, 1, 1]);
  assert.equal(h.count, 4);
  assert.ok(Math.abs(h.sum - 3.65) < 1e-12);
});

Deno.test("metrics: vLLM names, counts that follow the traffic", async () => {
  await withServer({}, async ({ url }) => {
    for (let i = 0; i < 3; i++) {
      const r = await post(`${url}/v1/completions`, {
        prompt: "hey",
        max_tokens: 5,
        ignore_eos: true,
      });
      await r.json();
    }
    const bad = await post(`${url}/v1/completions`, { prompt: 1 });
    await bad.body?.cancel();
    const res = await fetch(`${url}/metrics`);
    assert.match(res.headers.get("content-type")!, /text\/plain/);
    const page = await res.text();
    for (
      const name of [
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
        "vllm:num_preemptions_total",
        "baton:swap_outs_total",
        "baton:swap_blocks_used",
      ]
    ) assert.equal(sample(page, name), 0, name);
    assert.equal(sample(page, "vllm:generation_tokens_total"), 15);
    assert.equal(sample(page, "vllm:prompt_tokens_total"), 12);
    assert.equal(sample(page, "vllm:time_to_first_token_seconds_count"), 3);
    assert.equal(sample(page, "vllm:inter_token_latency_seconds_count"), 12);
    assert.equal(sample(page, "vllm:e2e_request_latency_seconds_count"), 3);
    assert.match(
      page,
      /vllm:request_success_total\{model_name="tiny",finished_reason="length"\} 3/,
    );
    assert.match(page, /baton:http_responses_total\{model_name="tiny",status="400"\} 1/);
    assert.match(
      page,
      /baton:plugin_decision_seconds_total\{model_name="tiny",slot="scheduler",plugin="fcfs"\} /,
    );
    assert.match(page, /# TYPE vllm:e2e_request_latency_seconds histogram/);
  });
});
