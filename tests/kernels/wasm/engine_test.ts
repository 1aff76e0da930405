import assert from "node:assert/strict";
import { Engine } from "../../../core/engine.ts";
import { presetModel } from "../../../core/model/load.ts";
import { type Job, jobs, type JobShape, serveJobs } from "../_jobs.ts";

/** Prompts of 1..30 tokens, 1..12 new tokens, arriving over 6 steps. */
const SHAPE: JobShape = { promptMax: 30, tokensMin: 1, tokensSpan: 12, arrivalSteps: 6 };

/** Serve `work` through an engine with `executor`; returns each request's tokens. */
async function serve(
  modelName: string,
  executor: { name: string; options?: Record<string, unknown> },
  work: Job[],
  preemption: "recompute" | "swap" = "recompute",
): Promise<{ outputs: string[]; preemptions: number; swapOuts: number; steps: number }> {
  const engine = await Engine.create({
    model: presetModel(modelName, 5),
    blockSize: 4,
    numBlocks: 14, // few blocks: requests get preempted and recomputed
    preemption,
    plugins: {
      executor,
      batcher: { name: "vllm", options: { maxNumBatchedTokens: 9 } }, // prompts run in chunks
    },
    log: () => {},
  });
  try {
    const served = await serveJobs(engine, work);
    const outputs = served.tokens.map((t, k) => `${t.join(" ")} ${served.reasons[k]}`);
    const steps = served.steps;
    const st = engine.stats;
    assert.equal(st.swapBlocksUsed, 0);
    return { outputs, preemptions: st.preemptions, swapOuts: st.swapOuts, steps };
  } finally {
    await engine.close();
  }
}

for (const name of ["tiny", "tiny-gqa", "small"]) {
  Deno.test({
    name: `an engine with --executor wasm generates the reference's greedy tokens on ${name}`,
    sanitizeOps: false,
    fn: async () => {
      const work = jobs(name === "small" ? 5 : 8, name.length, SHAPE);
      const ref = await serve(name, { name: "reference" }, work);
      const wasm = await serve(name, { name: "wasm", options: { threads: 2 } }, work);
      assert.ok(ref.preemptions > 0, "the workload was meant to cause preemptions");
      assert.deepEqual(wasm.outputs, ref.outputs);
      assert.equal(wasm.preemptions, ref.preemptions);
      for (const o of wasm.outputs) assert.match(o, /length$/);
    },
  });
}

Deno.test({
  name: "swap preemption on wasm: the KV comes back from host memory and the tokens stay the same",
  sanitizeOps: false,
  fn: async () => {
    const work = jobs(8, 7, SHAPE);
    const ref = await serve("tiny-gqa", { name: "reference" }, work);
    const swapped = await serve(
      "tiny-gqa",
      { name: "wasm", options: { threads: 2 } },
      work,
      "swap",
    );
    assert.ok(swapped.swapOuts > 0, "the workload was meant to swap");
    assert.deepEqual(swapped.outputs, ref.outputs);
  },
});

Deno.test({
  name: "an engine with --executor wasm and --kvcache relay generates plain attention's tokens",
  sanitizeOps: false,
  fn: async () => {
    const model = presetModel("tiny", 5);
    const system = "You are a terse assistant. Answer in one line. ".repeat(2);
    const prompts = [...Array.from({ length: 4 }, (_, i) => `${system}question ${i}?`), "other"];
    const run = async (executor: string, kvcache: Record<string, unknown>) => {
      const engine = await Engine.create({
        model,
        blockSize: 4,
        numBlocks: 200,
        plugins: {
          executor: { name: executor, options: executor === "wasm" ? { threads: 2 } : {} },
          kvcache: kvcache as { name: string },
          batcher: { name: "vllm", options: { maxNumBatchedTokens: 40 } },
        },
        log: () => {},
      });
      const out = prompts.map(() => [] as number[]);
      prompts.forEach((prompt, i) =>
        engine.add(
          { prompt, sampling: { temperature: 0, maxTokens: 8, ignoreEos: true } },
          (ev) => {
            if (ev.type === "token") out[i].push(ev.token);
          },
        )
      );
      while (engine.hasWork) await engine.step();
      await engine.close();
      return out;
    };
    const relay = await run("wasm", { name: "relay", options: { systemPrompt: system } });
    const plain = await run("reference", { name: "lru-prefix" });
    assert.deepEqual(relay, plain);
  },
});
