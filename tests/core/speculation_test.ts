import assert from "node:assert/strict";
import fc from "fast-check";
import { Engine } from "../../core/engine.ts";
import { presetModel } from "../../core/model/load.ts";
import { UsageError } from "../../core/errors.ts";
import { definePlugin } from "../../plugins/define.ts";
import type { Speculator } from "../../core/slots.ts";
import type { RequestInput } from "../../core/types.ts";
import { Rng } from "../../kernels/sim/rng.ts";
import { recordedDrafts, registryWith, scriptedExecutor } from "./_fakes.ts";

const tiny = presetModel("tiny");

/** Serve `inputs` together; each request's tokens, and the engine's counters. */
async function serve(
  inputs: RequestInput[],
  opts: {
    speculation?: string;
    options?: Record<string, unknown>;
    numBlocks?: number;
    executor?: string;
    onStep?: (e: Engine) => void;
  } = {},
) {
  const engine = await Engine.create({
    model: tiny,
    registry: registryWith(oracleDrafts),
    numBlocks: opts.numBlocks ?? 400,
    plugins: {
      executor: { name: opts.executor ?? "reference" },
      ...(opts.speculation
        ? { speculation: { name: opts.speculation, options: opts.options } }
        : {}),
    },
    log: () => {},
  });
  const out = inputs.map(() => ({ tokens: [] as number[], reason: "" }));
  inputs.forEach((input, i) =>
    engine.add({ ...input, id: `r${i}` }, (ev) => {
      if (ev.type === "token") out[i].tokens.push(ev.token);
      else out[i].reason = ev.reason;
    })
  );
  for (let s = 0; s < 20_000 && engine.hasWork; s++) {
    await engine.step();
    opts.onStep?.(engine);
  }
  const stats = engine.stats, used = engine.pool.usedBlocks;
  await engine.close();
  return { out, stats, used };
}

// Drafts from a recorded run, corrupted at random: accepted lengths from 0 to k.
let recorded: number[][] = [];
const oracleDrafts = recordedDrafts(() => recorded);

function workload(rng: Rng, n: number): RequestInput[] {
  return Array.from({ length: n }, (_, i) => {
    const len = rng.int(2, 60);
    // Repetitive prompts, so prompt lookup finds drafts too.
    const motif = Array.from({ length: rng.int(2, 6) }, () => rng.int(3, 250));
    const promptTokens = Array.from({ length: len }, (_, j) => motif[j % motif.length]);
    return {
      promptTokens,
      sampling: {
        maxTokens: rng.int(1, 40),
        temperature: i % 3 === 0 ? 0.9 : 0,
        topK: i % 4 === 0 ? 20 : 0,
        seed: rng.int(0, 1000),
        stopTokenIds: i % 5 === 0 ? [rng.int(3, 250)] : [],
        ignoreEos: i % 2 === 0,
      },
    };
  });
}

Deno.test("speculative decoding gives exactly the tokens of decoding one at a time (property)", async () => {
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 1, max: 1e6 }), fc.boolean(), async (seed, tight) => {
      const inputs = workload(new Rng(seed), 6);
      const numBlocks = tight ? 24 : 400; // a tight pool preempts
      const plain = await serve(inputs, { numBlocks });
      recorded = plain.out.map((o) => o.tokens);
      oracleDrafts.reseed(seed + 1);
      for (const speculation of ["recorded", "ngram"]) {
        const spec = await serve(inputs, {
          speculation,
          numBlocks,
          onStep: (e) => {
            // After a commit, a request holds no block beyond its next token's.
            for (const r of e.running) {
              assert.ok(r.numBlocks <= Math.ceil((r.numComputedTokens + 1) / 16), "blocks trimmed");
            }
          },
        });
        assert.deepEqual(spec.out, plain.out, speculation);
        assert.equal(spec.used, 0, "no block leaked");
        assert.ok(spec.stats.acceptedDraftTokens <= spec.stats.draftTokens);
      }
    }),
    { numRuns: 12 },
  );
});

Deno.test("speculative decoding on wasm gives the tokens of wasm decoding one at a time", async () => {
  for (const seed of [11, 12, 13]) {
    const inputs = workload(new Rng(seed), 6);
    const plain = await serve(inputs, { executor: "wasm", numBlocks: 24 });
    recorded = plain.out.map((o) => o.tokens);
    oracleDrafts.reseed(seed);
    for (const speculation of ["recorded", "ngram"]) {
      const spec = await serve(inputs, { executor: "wasm", speculation, numBlocks: 24 });
      assert.deepEqual(spec.out, plain.out, `${speculation}, seed ${seed}`);
      assert.ok(spec.stats.acceptedDraftTokens > 0);
      assert.equal(spec.used, 0);
    }
  }
});

Deno.test("speculative decoding: drafts are accepted and save steps", async () => {
  const inputs = workload(new Rng(5), 4).map((i) => ({
    ...i,
    sampling: { ...i.sampling, maxTokens: 40, stopTokenIds: [], ignoreEos: true },
  }));
  const plain = await serve(inputs);
  recorded = plain.out.map((o) => o.tokens);
  oracleDrafts.reseed(9);
  const spec = await serve(inputs, { speculation: "recorded" });
  assert.deepEqual(spec.out, plain.out);
  assert.ok(spec.stats.acceptedDraftTokens > 0);
  assert.ok(spec.stats.acceptedDraftTokens < spec.stats.draftTokens, "some drafts were wrong");
  assert.ok(spec.stats.steps < plain.stats.steps, `${spec.stats.steps} vs ${plain.stats.steps}`);
});

Deno.test("speculative decoding: a bad proposal is reported and the step goes on without it", async () => {
  const logs: string[] = [];
  const bad = definePlugin({
    name: "bad",
    slot: "speculation",
    create: (): Speculator => ({ propose: (_v, d) => ({ drafts: d.map(() => [1e9]) }) }),
  });
  const engine = await Engine.create({
    model: tiny,
    registry: registryWith(bad),
    plugins: { speculation: { name: "bad" } },
    log: (l) => logs.push(l),
  });
  const tokens: number[] = [];
  engine.add(
    { promptTokens: [5, 6], sampling: { maxTokens: 5, ignoreEos: true } },
    (ev) => ev.type === "token" && tokens.push(ev.token),
  );
  while (engine.hasWork) await engine.step();
  await engine.close();
  assert.equal(tokens.length, 5);
  assert.ok(logs.some((l) => /outside the vocabulary/.test(l)), logs.join("\n"));
});

Deno.test("speculative decoding needs an executor that verifies drafts", async () => {
  await assert.rejects(
    () =>
      Engine.create({
        model: tiny,
        registry: registryWith(scriptedExecutor(() => 5)),
        plugins: { executor: { name: "scripted" }, speculation: { name: "ngram" } },
      }),
    (e) =>
      e instanceof UsageError &&
      /verifies drafts \(reference, wasm, webgpu, sim\), not scripted/.test(e.message),
  );
});

Deno.test("draft-model: the target's own weights as the draft are always right when greedy", async () => {
  const inputs = workload(new Rng(21), 6).map((i) => ({
    ...i,
    sampling: { ...i.sampling, temperature: 0, topK: 0 },
  }));
  const plain = await serve(inputs);
  for (const executor of ["reference", "wasm"]) {
    const spec = await serve(inputs, {
      executor,
      speculation: "draft-model",
      options: { model: "tiny", executor, k: 3 },
    });
    assert.deepEqual(spec.out, plain.out, executor);
    assert.ok(spec.stats.draftTokens > 0);
    assert.equal(
      spec.stats.acceptedDraftTokens,
      spec.stats.draftTokens,
      "the same model drafts the same tokens",
    );
  }
});

Deno.test("draft-model: sampled rows stay exact; a draft of another vocabulary is refused", async () => {
  const inputs = workload(new Rng(22), 6);
  const plain = await serve(inputs);
  const spec = await serve(inputs, {
    speculation: "draft-model",
    options: { model: "tiny", executor: "reference" },
  });
  assert.deepEqual(spec.out, plain.out);
  await assert.rejects(
    () =>
      Engine.create({
        model: tiny,
        plugins: { speculation: { name: "draft-model", options: { model: "llama2c-15m" } } },
      }),
    (e) => e instanceof UsageError && /must share one/.test(e.message),
  );
});

Deno.test("draft-model: the speculator can be swapped away mid-run", async () => {
  const engine = await Engine.create({
    model: tiny,
    plugins: {
      executor: { name: "wasm" },
      speculation: { name: "draft-model", options: { model: "tiny", executor: "wasm" } },
    },
    log: () => {},
  });
  const tokens: number[] = [];
  engine.add(
    { promptTokens: [5, 6, 7], sampling: { maxTokens: 30, ignoreEos: true } },
    (ev) => ev.type === "token" && tokens.push(ev.token),
  );
  for (let i = 0; i < 3; i++) await engine.step();
  await engine.swap("speculation", "none");
  while (engine.hasWork) await engine.step();
  assert.equal(tokens.length, 30);
  assert.equal(engine.plugins().find((p) => p.slot === "speculation")?.name, "none");
  await engine.close();
});

Deno.test("a policy swapped away is closed: its resources do not outlive it", async () => {
  let closed = 0;
  const holder = definePlugin({
    name: "holder",
    slot: "speculation",
    create: () => ({ close: () => void closed++ }),
  });
  const engine = await Engine.create({
    model: tiny,
    registry: registryWith(holder),
    plugins: { speculation: { name: "holder" } },
    log: () => {},
  });
  engine.add({ promptTokens: [5], sampling: { maxTokens: 3 } }, () => {});
  await engine.step();
  await engine.swap("speculation", "none");
  await engine.step();
  assert.equal(closed, 1);
  await engine.close();
  assert.equal(closed, 1, "closed once");
});
