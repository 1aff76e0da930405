import assert from "node:assert/strict";
import { runWorkload } from "./_harness.ts";
import { generateLearnable } from "../../bench/workloads/learnable.ts";
import { Engine } from "../../core/engine.ts";
import { presetModel } from "../../core/model/load.ts";
import { trainRanker } from "../../policies/ltr/listmle.ts";
import { DEFAULT_FEATURES, Featurizer } from "../../policies/ltr/features.ts";

Deno.test("composition: ltr ordering + past-future admission + sarathi packing, simulated", async () => {
  const train = generateLearnable({ requests: 1500, seed: 21 });
  const f = new Featurizer(DEFAULT_FEATURES);
  const ranker = trainRanker(
    train.map((r) => ({ x: f.vector(r.promptTokens), length: r.outputLength })),
    DEFAULT_FEATURES,
    { epochs: 4 },
  );
  const path = await Deno.makeTempFile({ suffix: ".json" });
  await Deno.writeTextFile(path, JSON.stringify(ranker.toJSON()));
  const reqs = generateLearnable({
    requests: 300,
    seed: 22,
    maxTokens: 1024,
    arrival: { kind: "gamma", rate: 40, cv: 1 },
  });
  const requests = reqs.map((r) => ({
    id: r.id,
    prompt: r.promptTokens,
    output: r.outputLength,
    arrival: r.arrivalTime,
    maxTokens: 1024,
  }));
  const composed = await runWorkload({
    plugins: {
      scheduler: { name: "ltr", options: { ranker: path, maxNumSeqs: 64, tokenBudget: 512 } },
      admission: { name: "past-future", options: { window: 50, initialLength: 200 } },
      batcher: { name: "sarathi", options: { tokenBudget: 512, maxNumSeqs: 64 } },
    },
    requests,
    numBlocks: 600,
  });
  const base = await runWorkload({
    plugins: { batcher: { name: "sarathi", options: { tokenBudget: 512, maxNumSeqs: 64 } } },
    requests,
    numBlocks: 600,
  });
  await Deno.remove(path);
  for (const r of [composed, base]) {
    assert.equal(r.finishes.size, 300);
    assert.ok([...r.finishes.values()].every((f) => f.reason === "stop"));
    assert.ok(r.steps.every((s) => s.fallbacks.length === 0), "a plugin failed and was replaced");
  }
  const perToken = (r: typeof base) =>
    [...r.finishes.values()].reduce(
      (s, f) => s + (f.time - f.arrivalTime) / f.usage.completionTokens,
      0,
    ) / r.finishes.size;
  assert.ok(perToken(composed) < perToken(base), `${perToken(composed)} vs ${perToken(base)}`);
});

Deno.test("composition: the same three plugins drive the reference executor on the tiny model", async () => {
  const engine = await Engine.create({
    model: presetModel("tiny"),
    plugins: {
      executor: { name: "reference" },
      scheduler: { name: "ltr", options: { maxNumSeqs: 4, tokenBudget: 64 } },
      admission: { name: "past-future", options: { window: 8, initialLength: 16 } },
      batcher: { name: "sarathi", options: { tokenBudget: 64, maxNumSeqs: 4 } },
    },
    numBlocks: 64,
    log: () => {},
  });
  const prompts = [
    "Answer with one word: tea?",
    "Write 3 paragraphs about glaciers.",
    "List 5 facts about bees.",
    "Reply yes or no: is it raining?",
    "Tell me a story about a fox.",
    "Thoughts on opera?",
  ];
  const done = await Promise.all(
    prompts.map(async (prompt, i) => {
      let n = 0, reason = "";
      for await (
        const ev of engine.submit({
          prompt,
          sampling: { maxTokens: 6 + i * 3, temperature: 0, ignoreEos: true },
        })
      ) {
        if (ev.type === "token") n++;
        else reason = ev.reason;
      }
      return { n, reason };
    }).concat([(async () => {
      while (engine.hasWork) await engine.step();
      return { n: -1, reason: "" };
    })()]),
  );
  await engine.close();
  done.pop();
  done.forEach((d, i) => assert.deepEqual(d, { n: 6 + i * 3, reason: "length" }));
});
