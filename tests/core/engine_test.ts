import assert from "node:assert/strict";
import { Engine } from "../../core/engine.ts";
import { VirtualClock } from "../../core/clock.ts";
import { UsageError } from "../../core/errors.ts";
import { presetModel } from "../../core/model/load.ts";
import { EOS_ID } from "../../core/model/byte_tokenizer.ts";
import { z } from "zod";
import { definePlugin } from "../../plugins/define.ts";
import type { RequestEvent, RequestInput, RequestView } from "../../core/types.ts";
import { registryWith, scriptedExecutor } from "./_fakes.ts";

const tiny = presetModel("tiny", 1);
const byte = (s: string) => [...new TextEncoder().encode(s)].map((b) => b + 3);

async function drain(engine: Engine, max = 5000): Promise<void> {
  for (let i = 0; i < max && engine.hasWork; i++) await engine.step();
  assert.equal(engine.hasWork, false, "engine still has work");
}

function collect(engine: Engine, input: RequestInput) {
  const out = {
    tokens: [] as number[],
    text: "",
    finish: undefined as Extract<RequestEvent, { type: "finish" }> | undefined,
  };
  engine.add(input, (ev) => {
    if (ev.type === "token") {
      out.tokens.push(ev.token);
      out.text += ev.text;
    } else {
      out.finish = ev;
      out.text += ev.text;
    }
  });
  return out;
}

Deno.test("stops: max tokens, EOS unless ignored, stop token ids, stop strings cut before the match", async () => {
  // The executor spells "abc<stop>def" then EOS, forever.
  const script = [...byte("abcXYdef"), EOS_ID];
  const registry = registryWith(scriptedExecutor((s) => script[s.outputIndex % script.length]));
  const engine = await Engine.create({
    model: tiny,
    registry,
    plugins: { executor: { name: "scripted" } },
    clock: new VirtualClock(),
  });
  const p = byte("hi");
  const len = collect(engine, { promptTokens: p, sampling: { maxTokens: 3 } });
  const eos = collect(engine, { promptTokens: p, sampling: { maxTokens: 50 } });
  const ignore = collect(engine, { promptTokens: p, sampling: { maxTokens: 12, ignoreEos: true } });
  const stopId = collect(engine, {
    promptTokens: p,
    sampling: { maxTokens: 50, stopTokenIds: [byte("d")[0]] },
  });
  const stopStr = collect(engine, {
    promptTokens: p,
    sampling: { maxTokens: 50, stop: ["XY", "zz"] },
  });
  await drain(engine);
  assert.equal(len.finish?.reason, "length");
  assert.equal(len.text, "abc");
  assert.equal(eos.finish?.reason, "stop");
  assert.equal(eos.text, "abcXYdef");
  assert.equal(eos.tokens.length, 9, "the EOS token counts as generated");
  assert.equal(ignore.finish?.reason, "length");
  assert.equal(ignore.tokens.length, 12);
  assert.equal(stopId.finish?.reason, "stop");
  assert.equal(stopId.text, "abcXY");
  assert.equal(stopStr.finish?.reason, "stop");
  assert.equal(stopStr.text, "abc");
  assert.equal(engine.pool.freeBlocks, engine.pool.numBlocks);
});

Deno.test("abort frees the request's blocks at once and ends it with reason abort", async () => {
  const engine = await Engine.create({ model: tiny, clock: new VirtualClock(), log: () => {} });
  const r = collect(engine, {
    prompt: "a longer prompt that spans several blocks",
    sampling: { maxTokens: 100, ignoreEos: true },
  });
  await engine.step();
  await engine.step();
  assert.ok(engine.pool.usedBlocks > 0);
  assert.equal(engine.abort("req-0"), true);
  assert.equal(engine.pool.usedBlocks, 0);
  assert.equal(r.finish?.reason, "abort");
  assert.equal(engine.abort("req-0"), false);
  assert.equal(engine.hasWork, false);
});

Deno.test("bad requests are refused with the field named, and the engine keeps serving", async () => {
  const engine = await Engine.create({ model: tiny, clock: new VirtualClock() });
  const ok = collect(engine, { prompt: "fine", sampling: { maxTokens: 4 } });
  const bad: [RequestInput, RegExp][] = [
    [{ prompt: "" }, /empty/],
    [{}, /needs a prompt/],
    [{ promptTokens: [1, 99999] }, /token 99999/],
    [{ promptTokens: new Int32Array([1, 99999]) }, /token 99999/],
    [{ promptTokens: new Float64Array([1, 2]) as never }, /an array or Int32Array of token ids/],
    [{ promptTokens: "1 2" as never }, /an array or Int32Array of token ids/],
    [{ prompt: "x", sampling: { temperature: -1 } }, /temperature/],
    [{ prompt: "x", sampling: { topP: 0 } }, /top_p/],
    [{ prompt: "x", sampling: { maxTokens: 0 } }, /max_tokens/],
    [{ prompt: "x", sampling: { topK: 1.5 } }, /top_k/],
    [{ prompt: "x".repeat(600) }, /fewer than 512/],
    [{ id: "req-0", prompt: "dup" }, /already in flight/],
  ];
  for (const [input, message] of bad) {
    assert.throws(
      () => engine.add(input, () => {}),
      (e: unknown) => e instanceof UsageError && message.test(e.message),
      JSON.stringify(input).slice(0, 60),
    );
    assert.throws(
      () => engine.add(input, () => {}),
      (e: unknown) => e instanceof UsageError && message.test(e.message),
    );
  }
  await drain(engine);
  assert.equal(ok.finish?.reason, "length");
  assert.equal(ok.tokens.length, 4);
});

Deno.test("an Int32Array prompt generates what the same ids in an array do, and shares its cached blocks", async () => {
  const engine = await Engine.create({ model: tiny, clock: new VirtualClock(), log: () => {} });
  const ids = tiny.tokenizer.encode("a prompt long enough to fill a few KV blocks", {
    addBos: true,
  });
  const sampling = { maxTokens: 8, temperature: 0, ignoreEos: true };
  const plain = collect(engine, { promptTokens: ids, sampling });
  await drain(engine);
  const hitsBefore = engine.stats.prefixHitTokens;
  const typed = collect(engine, { promptTokens: Int32Array.from(ids), sampling });
  await drain(engine);
  assert.equal(typed.finish?.reason, "length");
  assert.deepEqual(typed.tokens, plain.tokens);
  assert.ok(engine.stats.prefixHitTokens > hitsBefore, "the typed prompt hit the cached blocks");
  assert.equal(typed.finish?.usage.cachedTokens, engine.stats.prefixHitTokens - hitsBefore);
});

Deno.test("a throwing plugin is replaced by its slot's default for the step, logged once, and loses no request", async () => {
  let calls = 0;
  const flaky = definePlugin({
    name: "flaky",
    slot: "scheduler",
    create: () => ({
      order(view) {
        if (++calls % 2 === 0) throw new Error("boom");
        return { running: view.running, waiting: view.waiting };
      },
    }),
  });
  const logs: string[] = [];
  const engine = await Engine.create({
    model: tiny,
    registry: registryWith(flaky),
    plugins: { scheduler: { name: "flaky" } },
    clock: new VirtualClock(),
    log: (l) => logs.push(l),
  });
  const rs = Array.from(
    { length: 5 },
    (_, i) =>
      collect(engine, { prompt: `request ${i}`, sampling: { maxTokens: 6, ignoreEos: true } }),
  );
  const fallbacks: string[] = [];
  engine.onStep((r) => fallbacks.push(...r.fallbacks));
  await drain(engine);
  for (const r of rs) assert.equal(r.finish?.reason, "length");
  assert.ok(fallbacks.includes("scheduler"));
  const mentions = logs.filter((l) => l.includes('"flaky"') && l.includes("boom"));
  assert.equal(mentions.length, 1, `logged once: ${logs.join(" | ")}`);
});

Deno.test("an invalid plan is rejected with the plugin named, and the default batches instead", async () => {
  const greedy = definePlugin({
    name: "double-booker",
    slot: "batcher",
    create: () => ({
      plan: (view) => ({
        scheduled: [
          ...view.running.map((r) => ({ id: r.id, numTokens: r.numTokens - r.numComputedTokens })),
          ...view.waiting.flatMap((r) => [{ id: r.id, numTokens: 1 }, { id: r.id, numTokens: 1 }]),
        ],
        preempted: [],
      }),
    }),
  });
  const logs: string[] = [];
  const engine = await Engine.create({
    model: tiny,
    registry: registryWith(greedy),
    plugins: { batcher: { name: "double-booker" } },
    clock: new VirtualClock(),
    log: (l) => logs.push(l),
  });
  const r = collect(engine, { prompt: "hello", sampling: { maxTokens: 3 } });
  await drain(engine);
  assert.equal(r.finish?.reason, "length");
  assert.ok(
    logs.some((l) => l.includes('batcher plugin "double-booker"') && l.includes("twice")),
    logs.join("\n"),
  );
});

Deno.test("hot swap at an iteration boundary keeps KV and tokens; a bad swap leaves the old plugin", async () => {
  const run = async (swapAt: number | null) => {
    const engine = await Engine.create({
      model: tiny,
      clock: new VirtualClock(),
      log: () => {},
      numBlocks: 40,
      blockSize: 4,
    });
    const rs = Array.from(
      { length: 6 },
      (_, i) =>
        collect(engine, {
          prompt: `swap test ${i} `.repeat(i + 1),
          sampling: { temperature: 0, maxTokens: 12, ignoreEos: true },
        }),
    );
    for (let step = 0; engine.hasWork; step++) {
      if (step === swapAt) {
        await assert.rejects(engine.swap("batcher", "vllm", { maxNumSeqs: -1 }), /max-num-seqs/);
        await engine.swap("batcher", "prefill-first", {});
        await engine.swap("scheduler", "priority", {});
        assert.equal(
          engine.plugins().find((p) => p.slot === "batcher")?.name,
          "vllm",
          "swap waits for the boundary",
        );
      }
      await engine.step();
    }
    assert.equal(
      engine.plugins().find((p) => p.slot === "batcher")?.name,
      swapAt === null ? "vllm" : "prefill-first",
    );
    return rs.map((r) => [r.finish?.reason, ...r.tokens]);
  };
  assert.deepEqual(await run(3), await run(null));
});

Deno.test("a seeded request samples the same tokens whatever it is batched with", async () => {
  const alone = await Engine.create({ model: tiny, clock: new VirtualClock() });
  const a = collect(alone, {
    prompt: "seeded",
    sampling: { seed: 42, temperature: 0.9, topP: 0.95, maxTokens: 10, ignoreEos: true },
  });
  await drain(alone);
  const crowded = await Engine.create({ model: tiny, clock: new VirtualClock() });
  for (let i = 0; i < 4; i++) {
    collect(crowded, { prompt: `noise ${i}`, sampling: { maxTokens: 7 } });
  }
  const b = collect(crowded, {
    prompt: "seeded",
    sampling: { seed: 42, temperature: 0.9, topP: 0.95, maxTokens: 10, ignoreEos: true },
  });
  await drain(crowded);
  assert.deepEqual(b.tokens, a.tokens);
  assert.notDeepEqual(a.tokens, [
    a.tokens[0],
    a.tokens[0],
    a.tokens[0],
    a.tokens[0],
    a.tokens[0],
    a.tokens[0],
    a.tokens[0],
    a.tokens[0],
    a.tokens[0],
    a.tokens[0],
  ]);
});

Deno.test("submit streams events until the finish event; a prefix hit skips prefill compute", async () => {
  const engine = await Engine.create({ model: tiny, clock: new VirtualClock(), blockSize: 4 });
  let done = false;
  const loop = (async () => {
    while (true) {
      if (!engine.hasWork) await new Promise((r) => setTimeout(r, 1));
      else await engine.step();
      if (done) return;
    }
  })();
  const prompt = "a shared system prompt that is long enough: ";
  const first: RequestEvent[] = [];
  for await (const ev of engine.submit({ prompt: prompt + "one", sampling: { maxTokens: 3 } })) {
    first.push(ev);
  }
  const tokensBefore = engine.stats.prefixHitTokens;
  const second: RequestEvent[] = [];
  for await (const ev of engine.submit({ prompt: prompt + "two", sampling: { maxTokens: 3 } })) {
    second.push(ev);
  }
  done = true;
  await loop;
  assert.deepEqual(first.map((e) => e.type), ["token", "token", "token", "finish"]);
  const fin = second.at(-1) as Extract<RequestEvent, { type: "finish" }>;
  assert.ok(fin.usage.cachedTokens >= 40, `cached ${fin.usage.cachedTokens}`);
  assert.equal(engine.stats.prefixHitTokens - tokensBefore, fin.usage.cachedTokens);
});

Deno.test("options are validated against the plugin's schema when the engine is created", async () => {
  await assert.rejects(
    Engine.create({
      model: tiny,
      plugins: { admission: { name: "watermark", options: { watermark: 2 } } },
    }),
    (e: unknown) =>
      e instanceof UsageError && /--admission.watermark/.test(e.message) &&
      /<= 0.5/.test(e.message),
  );
  await assert.rejects(
    Engine.create({ model: tiny, plugins: { batcher: { name: "vllm", options: { nope: 1 } } } }),
    /has no option "nope"/,
  );
  await assert.rejects(
    Engine.create({ model: tiny, plugins: { batcher: { name: "magic" } } }),
    /allowed: vllm/,
  );
});

Deno.test("oracle facts reach plugins only with a simulated executor", async () => {
  const seen: unknown[] = [];
  const probe = definePlugin({
    name: "probe",
    slot: "admission",
    options: z.object({}),
    create: (_o, ctx) => {
      seen.push(ctx.oracle);
      return { admit: () => true };
    },
  });
  await Engine.create({
    model: tiny,
    registry: registryWith(probe),
    plugins: { admission: { name: "probe" } },
  });
  assert.equal(seen[0], undefined);
  await Engine.create({
    model: tiny,
    registry: registryWith(probe, scriptedExecutor(() => 5)),
    plugins: { admission: { name: "probe" }, executor: { name: "scripted" } },
  });
  assert.equal(typeof (seen[1] as { outputLength?: unknown }).outputLength, "function");
});

Deno.test("a policy that mutates the queues it is shown fails that step and cannot corrupt the engine", async () => {
  const vandal = definePlugin({
    name: "vandal",
    slot: "scheduler",
    create: () => ({
      order(view) {
        const running = [...view.running];
        const waiting = view.waiting as RequestView[];
        waiting.reverse(); // in place, against the read-only type
        (view.running as RequestView[]).length = 0;
        return { running, waiting: [...waiting].reverse() };
      },
    }),
  });
  const run = async (scheduler: string) => {
    const engine = await Engine.create({
      model: tiny,
      registry: registryWith(vandal),
      plugins: { scheduler: { name: scheduler } },
      clock: new VirtualClock(),
      log: () => {},
    });
    const rs = Array.from(
      { length: 4 },
      (_, i) =>
        collect(engine, {
          prompt: `vandal ${i}`,
          sampling: { temperature: 0, maxTokens: 5, ignoreEos: true },
        }),
    );
    await drain(engine);
    assert.equal(engine.pool.usedBlocks, 0);
    return rs.map((r) => [r.finish?.reason, ...r.tokens]);
  };
  assert.deepEqual(await run("vandal"), await run("fcfs"));
});

Deno.test("stream false: only the finish event, with the same text and token timing as streaming", async () => {
  const script = [...byte("hello"), EOS_ID];
  const gaps: number[] = [];
  const clock = new VirtualClock();
  const engine = await Engine.create({
    model: tiny,
    registry: registryWith(scriptedExecutor((s) => script[s.outputIndex % script.length])),
    plugins: { executor: { name: "scripted" } },
    clock,
    onTokenGap: (g, n) => gaps.push(...Array(n).fill(g)),
  });
  const events: RequestEvent[][] = [[], []];
  engine.add({ promptTokens: byte("a"), sampling: { maxTokens: 50 } }, (ev) => events[0].push(ev));
  engine.add(
    { promptTokens: byte("a"), sampling: { maxTokens: 50 }, stream: false },
    (ev) => events[1].push(ev),
  );
  await drain(engine);
  const [streamed, quiet] = events;
  assert.equal(streamed.length, 7); // six tokens, then the finish
  assert.equal(quiet.length, 1);
  const a = streamed[6], b = quiet[0];
  assert.ok(a.type === "finish" && b.type === "finish");
  const streamedText = streamed.map((e) => e.text).join("");
  assert.equal(streamedText, "hello");
  assert.equal(b.text, "hello");
  assert.equal(b.usage.completionTokens, 6);
  const tokenTimes = streamed.flatMap((e) => e.type === "token" ? [e.time] : []);
  for (const f of [a, b]) {
    assert.equal(f.firstTokenTime, tokenTimes[0]);
    assert.equal(f.lastTokenTime, tokenTimes[5]);
    assert.ok(Math.abs(f.maxTokenGap - 0.01) < 1e-9); // the scripted step takes 10 ms
  }
  // Five gaps per request, streaming or not.
  assert.equal(gaps.length, 10);
  for (const g of gaps) assert.ok(Math.abs(g - 0.01) < 1e-9);
  assert.throws(
    () => engine.add({ promptTokens: [5], stream: "no" as unknown as boolean }, () => {}),
    /stream must be true or false/,
  );
});

Deno.test("preemption options: an unknown mode or a bad swap space is a usage error", async () => {
  await assert.rejects(
    () => Engine.create({ model: tiny, preemption: "spill" as "swap" }),
    (e) => e instanceof UsageError && /"recompute" or "swap"/.test(e.message),
  );
  await assert.rejects(
    () => Engine.create({ model: tiny, swapBlocks: -1 }),
    (e) => e instanceof UsageError && /swap space/.test(e.message),
  );
});

Deno.test("swapping the executor while requests are swapped out recomputes them; no host slot leaks", async () => {
  const run = async (preemption: "recompute" | "swap", swapExecutorAt: boolean) => {
    const engine = await Engine.create({
      model: tiny,
      clock: new VirtualClock(),
      log: () => {},
      numBlocks: 14,
      blockSize: 4,
      preemption,
      swapBlocks: 64,
    });
    const rs = Array.from(
      { length: 5 },
      (_, i) =>
        collect(engine, {
          prompt: `swap space ${i} `.repeat(i % 2 + 1),
          sampling: { temperature: 0, maxTokens: 14, ignoreEos: true },
        }),
    );
    let swappedWhenSwapped = 0;
    while (engine.hasWork) {
      const waitingSwapped = engine.waiting.filter((r) => r.swappedTokens > 0).length;
      if (swapExecutorAt && swappedWhenSwapped === 0 && waitingSwapped > 0) {
        swappedWhenSwapped = waitingSwapped;
        await engine.swap("executor", "reference", {});
      }
      await engine.step();
    }
    const st = engine.stats;
    assert.equal(st.swapBlocksUsed, 0);
    assert.equal(engine.pool.freeBlocks, 14);
    return { tokens: rs.map((r) => [r.finish?.reason, ...r.tokens]), st, swappedWhenSwapped };
  };
  const plain = await run("recompute", false);
  const swapped = await run("swap", false);
  const hot = await run("swap", true);
  assert.ok(plain.st.preemptions > 0, "the small pool must preempt");
  assert.ok(swapped.st.swapOuts > 0);
  assert.ok(hot.swappedWhenSwapped > 0, "a request was swapped out when the executor changed");
  assert.deepEqual(swapped.tokens, plain.tokens);
  assert.deepEqual(hot.tokens, plain.tokens);
});

Deno.test("agent turns: what a turn says reaches the policies; a malformed one is refused", async () => {
  const engine = await Engine.create({ model: tiny });
  const id = engine.add(
    { promptTokens: [5, 6], programId: "job-7", turn: { tool: "bash" } },
    () => {},
  );
  const view = engine.request(id)!;
  assert.equal(view.programId, "job-7");
  assert.deepEqual(view.turn, { tool: "bash" });
  const bad: [unknown, RegExp][] = [
    [{ last: "yes" }, /turn.last must be true or false/],
    [{ tool: "" }, /turn.tool must be a non-empty string/],
    ["bash", /turn must be an object/],
  ];
  for (const [turn, re] of bad) {
    assert.throws(
      () => engine.add({ promptTokens: [5], turn: turn as never }, () => {}),
      (e) => e instanceof UsageError && re.test(e.message),
    );
  }
  assert.throws(
    () => engine.add({ promptTokens: [5], programId: 7 as never }, () => {}),
    /programId must be a string/,
  );
  assert.equal(engine.waiting.length, 1, "refused requests leave the queue as it was");
  await engine.close();
});
