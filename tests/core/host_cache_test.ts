import assert from "node:assert/strict";
import fc from "fast-check";
import { HostKvCache } from "../../core/host_cache.ts";
import { Engine } from "../../core/engine.ts";
import { presetModel } from "../../core/model/load.ts";
import { UsageError } from "../../core/errors.ts";
import type { RequestInput } from "../../core/types.ts";
import { registryWith, scriptedExecutor } from "./_fakes.ts";

const block = (seed: number) => Array.from({ length: 4 }, (_, i) => seed * 10 + i);

Deno.test("host cache: stores by hash and tokens, hands a hit out once, oldest out first", () => {
  const host = new HostKvCache(2, 100, 4);
  assert.equal(host.store(11, 0, block(1), 0), 100, "slots are numbered after the swap space");
  assert.equal(host.store(11, 0, block(1), 0), -1, "a stored block is not stored twice");
  assert.equal(host.store(22, 11, block(2), 0), 101);
  assert.equal(host.has(11, 0, block(9), 0), false, "the tokens must match, not only the hash");
  assert.equal(host.has(11, 7, block(1), 0), false, "and the parent");
  // Full: the block stored first gives up its slot.
  assert.equal(host.store(33, 22, block(3), 0), 100);
  assert.equal(host.has(11, 0, block(1), 0), false);
  assert.equal(host.take(22, 11, block(2), 0), 101);
  assert.equal(host.take(22, 11, block(2), 0), -1, "a hit is taken out");
  assert.equal(host.size, 1);
  // The taken slot stays reserved until released: the oldest stored block goes instead.
  assert.equal(host.store(44, 33, block(4), 0), 100);
  assert.equal(host.has(33, 22, block(3), 0), false);
  host.release(101);
  assert.equal(host.store(55, 44, block(5), 0), 101);
  assert.ok(host.owns(100) && host.owns(101) && !host.owns(99) && !host.owns(102));
  host.clear();
  assert.equal(host.size, 0);
  assert.equal(host.has(55, 44, block(5), 0), false);
});

Deno.test("host cache: never hands out a slot twice (property)", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.tuple(fc.constantFrom("store", "take", "release"), fc.integer({ min: 0, max: 9 })),
        {
          maxLength: 200,
        },
      ),
      (ops) => {
        const host = new HostKvCache(3, 0, 4);
        const stored = new Map<number, number>(); // key -> slot
        const taken: number[] = [];
        for (const [op, key] of ops) {
          if (op === "store") {
            const slot = host.store(key + 1, 0, block(key), 0);
            if (slot >= 0) {
              for (const [k, s] of stored) if (s === slot) stored.delete(k);
              assert.ok(!taken.includes(slot), "a slot waiting for its copy back is reused");
              stored.set(key, slot);
            }
          } else if (op === "take") {
            const slot = host.take(key + 1, 0, block(key), 0);
            assert.equal(slot, stored.get(key) ?? -1);
            if (slot >= 0) {
              stored.delete(key);
              taken.push(slot);
            }
          } else if (taken.length > 0) host.release(taken.shift()!);
        }
        assert.equal(host.size, stored.size);
      },
    ),
  );
});

const tiny = presetModel("tiny");
const greedy = { temperature: 0, ignoreEos: true };

/** Serve the inputs one after another; the tokens and cached-prompt counts of each. */
async function serial(engine: Engine, inputs: RequestInput[]) {
  const out: { tokens: number[]; cached: number }[] = [];
  for (const input of inputs) {
    const tokens: number[] = [];
    let cached = -1;
    engine.add(input, (ev) => {
      if (ev.type === "token") tokens.push(ev.token);
      else cached = ev.usage.cachedTokens;
    });
    while (engine.hasWork) await engine.step();
    out.push({ tokens, cached });
  }
  return out;
}

const ids = (n: number, seed: number) => Array.from({ length: n }, (_, i) => 30 + (i * seed) % 200);

for (const executor of ["reference", "wasm"]) {
  Deno.test(`host cache: an evicted prefix comes back from host memory with the same tokens (${executor})`, async () => {
    const first = { promptTokens: ids(150, 7), sampling: { ...greedy, maxTokens: 20 } };
    const run = async (hostCacheBlocks: number, numBlocks: number) => {
      const engine = await Engine.create({
        model: tiny,
        numBlocks,
        hostCacheBlocks,
        plugins: { executor: { name: executor } },
        log: () => {},
      });
      const [a] = await serial(engine, [first]);
      // Two other requests push the first one's blocks out of a small pool.
      await serial(engine, [
        { promptTokens: ids(100, 11), sampling: { ...greedy, maxTokens: 4 } },
        { promptTokens: ids(200, 13), sampling: { ...greedy, maxTokens: 4 } },
      ]);
      const [b] = await serial(engine, [{
        promptTokens: [...first.promptTokens, ...a.tokens, 40, 41],
        sampling: { ...greedy, maxTokens: 12 },
      }]);
      const stats = engine.stats;
      await engine.close();
      return { a, b, stats };
    };
    const roomy = await run(0, 400);
    const lost = await run(0, 24);
    const offloaded = await run(64, 24);
    assert.equal(roomy.b.cached, 160, "10 full blocks of the first request's KV");
    assert.ok(lost.b.cached < 160);
    assert.equal(offloaded.b.cached, 160);
    assert.ok(offloaded.stats.hostHitTokens > 0 && offloaded.stats.hostStores > 0);
    assert.equal(offloaded.stats.hostHitTokens, 160 - lost.b.cached);
    // The KV copied back is the KV computed: the same tokens as with no eviction at all.
    assert.deepEqual(offloaded.a.tokens, roomy.a.tokens);
    assert.deepEqual(offloaded.b.tokens, roomy.b.tokens);
    assert.equal(offloaded.stats.swapBlocksUsed, 0);
  });
}

Deno.test("host cache: continuous batching under pressure gives each request's tokens alone", async () => {
  const prompts = Array.from({ length: 12 }, (_, i) => ids(40 + 9 * i, 3 + (i % 4)));
  // Four prompts, then eight that extend them: by the time those run, the pool has pushed
  // the first four's blocks out to the host tier.
  const order = [0, 3, 6, 9, 1, 2, 4, 5, 7, 8, 10, 11];
  const inputs = order.map((i) => ({
    promptTokens: i % 3 === 0 ? prompts[i] : [...prompts[i - (i % 3)], ...prompts[i].slice(0, 20)],
    sampling: { ...greedy, maxTokens: 6 + (i % 5) },
  }));
  const alone = await Engine.create({ model: tiny, numBlocks: 400, log: () => {} });
  const want = await serial(alone, inputs);
  await alone.close();
  const engine = await Engine.create({
    model: tiny,
    numBlocks: 20,
    hostCacheBlocks: 16,
    log: () => {},
  });
  const got: number[][] = inputs.map(() => []);
  inputs.forEach((input, i) =>
    engine.add(input, (ev) => ev.type === "token" && got[i].push(ev.token))
  );
  for (let s = 0; s < 5000 && engine.hasWork; s++) await engine.step();
  assert.deepEqual(got, want.map((w) => w.tokens));
  assert.ok(engine.stats.hostHitTokens > 0, "prefixes came back from the host tier");
  assert.equal(engine.pool.usedBlocks, 0, "no block leaked");
  await engine.close();
});

Deno.test("host cache: refused without an executor that swaps, and checked", async () => {
  const registry = registryWith(scriptedExecutor(() => 5));
  await assert.rejects(
    () =>
      Engine.create({
        model: tiny,
        registry,
        plugins: { executor: { name: "scripted" } },
        hostCacheBlocks: 8,
      }),
    (e) => e instanceof UsageError && /executor that copies KV to host memory/.test(e.message),
  );
  await assert.rejects(
    () => Engine.create({ model: tiny, hostCacheBlocks: -1 }),
    (e) => e instanceof UsageError && /whole number of blocks/.test(e.message),
  );
});
