import assert from "node:assert/strict";
import { main as simulateMain } from "../../cli/simulate.ts";
import { main as compareMain } from "../../cli/compare.ts";
import { main as capacityMain, searchCapacity } from "../../cli/capacity.ts";
import { UsageError } from "../../core/errors.ts";

const BASE = [
  "--workload",
  "sharegpt",
  "--requests",
  "40",
  "--rate",
  "4",
  "--model",
  "mistral-7b",
  "--gpu",
  "a100-80g",
  "--seed",
  "3",
];

/** Run with console.log silenced; returns the printed text. */
async function quiet(fn: () => Promise<number>): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const log = console.log, err = console.error;
  console.log = (...a: unknown[]) => lines.push(a.join(" "));
  console.error = () => {};
  try {
    return { code: await fn(), out: lines.join("\n") };
  } finally {
    console.log = log;
    console.error = err;
  }
}

Deno.test("simulate: table, JSON and SVG; the same seed writes the same JSON", async () => {
  const a = await Deno.makeTempDir(), b = await Deno.makeTempDir();
  const r = await quiet(() => simulateMain([...BASE, "--out", a]));
  assert.equal(r.code, 0);
  assert.match(r.out, /Successful requests:\s+40/);
  assert.match(r.out, /Mean TTFT \(ms\)/);
  await quiet(() => simulateMain([...BASE, "--out", b]));
  const ja = await Deno.readTextFile(`${a}/result.json`);
  assert.equal(ja, await Deno.readTextFile(`${b}/result.json`));
  assert.equal(JSON.parse(ja).config.model, "mistral-7b");
  assert.match(await Deno.readTextFile(`${a}/ttft_cdf.svg`), /^<svg/);
  await Deno.remove(a, { recursive: true });
  await Deno.remove(b, { recursive: true });
});

Deno.test("simulate: a trace file and closed-loop clients", async () => {
  const dir = await Deno.makeTempDir();
  const trace = `${dir}/t.csv`;
  await Deno.writeTextFile(trace, "num_prefill_tokens,num_decode_tokens\n100,20\n300,5\n50,50\n");
  const r = await quiet(() =>
    simulateMain([
      "--trace",
      trace,
      "--arrival",
      "closed",
      "--clients",
      "2",
      "--model",
      "llama-2-7b",
      "--out",
      dir,
    ])
  );
  assert.equal(r.code, 0);
  const json = JSON.parse(await Deno.readTextFile(`${dir}/result.json`));
  assert.equal(json.summary.completed, 3);
  assert.equal(json.summary.total_output_tokens, 75);
  await Deno.writeTextFile(trace, "num_prefill_tokens,num_decode_tokens\n100,20\n-3,5\n");
  await assert.rejects(
    () => simulateMain(["--trace", trace]),
    (e) => e instanceof UsageError && /line 3/.test(e.message),
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("simulate: bad input is a UsageError", async () => {
  await assert.rejects(() => simulateMain(["--workload", "no-such"]), UsageError);
  await assert.rejects(() => simulateMain(["--gpu", "tpu"]), UsageError);
  await assert.rejects(() => simulateMain(["--model", "gpt-9000"]), UsageError);
  await assert.rejects(() => simulateMain(["--rate", "0"]), UsageError);
  await assert.rejects(() => simulateMain(["--requests", "-4"]), UsageError);
  await assert.rejects(() => simulateMain(["--executor", "reference"]), UsageError);
  await assert.rejects(() => simulateMain([...BASE, "--preemption", "spill"]), UsageError);
  await assert.rejects(() => simulateMain([...BASE, "--swap-blocks", "-1"]), UsageError);
});

Deno.test("simulate: --preemption swap swaps instead of recomputing under memory pressure", async () => {
  const tight = [...BASE, "--rate", "40", "--num-blocks", "600"];
  const recompute = await quiet(() => simulateMain(tight));
  const swap = await quiet(() => simulateMain([...tight, "--preemption", "swap"]));
  assert.equal(swap.code, 0);
  assert.match(recompute.out, /Preemptions:\s+[1-9]/);
  assert.doesNotMatch(recompute.out, /Swapped out/);
  assert.match(swap.out, /Swapped out \(of them\):\s+[1-9]/);
  assert.match(swap.out, /Recomputed tokens:\s+0\b/);
});

Deno.test("compare: policy sets side by side", async () => {
  const r = await quiet(() =>
    compareMain([
      ...BASE,
      "--policies",
      "examples/policies/vllm.json,examples/policies/prefill-first.json",
    ])
  );
  assert.equal(r.code, 0);
  assert.match(r.out, /metric\s+vllm\s+prefill-first/);
  assert.match(r.out, /p99 ITL \(TBT\) ms/);
});

Deno.test("capacity: bisection finds the threshold of a monotone test", async () => {
  const { capacity, probes } = await searchCapacity(
    (rate) => Promise.resolve({ rate, p99Tbt: rate / 10, p50SchedDelay: 0, ok: rate <= 3.3 }),
    { start: 1, granularity: 0.01, maxProbes: 30 },
  );
  assert(capacity <= 3.3 && capacity > 3.3 * 0.98, `capacity ${capacity}`);
  assert(probes.length < 30);
  const r = await quiet(() =>
    capacityMain([
      ...BASE.slice(0, 4),
      "--model",
      "mistral-7b",
      "--slo-p99-tbt",
      "0.5",
      "--max-probes",
      "4",
    ])
  );
  assert.equal(r.code, 0);
  assert.match(r.out, /capacity: [\d.]+ requests\/s/);
});

Deno.test("simulate: agent workloads report job completion times; they arrive as Poisson programs", async () => {
  const agents = [
    "--workload",
    "swe-agent",
    "--requests",
    "6",
    "--rate",
    "0.5",
    "--model",
    "llama-3.1-8b",
    "--kv-tokens",
    "100000",
    "--scheduler",
    "program-fcfs",
    "--kvcache",
    "ttl",
  ];
  const r = await quiet(() => simulateMain(agents));
  assert.equal(r.code, 0);
  assert.match(r.out, /Programs completed \/ seen:\s+6 \/ 6/);
  assert.match(r.out, /Mean JCT \(s\):\s+\d/);
  const c = await quiet(() =>
    compareMain([
      ...agents.slice(0, 10),
      "--policies",
      "examples/policies/vllm.json,examples/policies/continuum.json",
    ])
  );
  assert.equal(c.code, 0);
  assert.match(c.out, /metric\s+vllm\s+continuum/);
  assert.match(c.out, /programs completed\s+6\s+6/);
  assert.match(c.out, /mean JCT s\s+\d/);
  await assert.rejects(
    () => quiet(() => simulateMain([...agents, "--arrival", "closed"])),
    (e) => e instanceof UsageError && /Poisson process of programs/.test(e.message),
  );
});
