import assert from "node:assert/strict";
import { relay, type RelayKvCache } from "../../../policies/relay/mod.ts";
import { presetModel } from "../../../core/model/load.ts";
import type { PluginContext } from "../../../core/slots.ts";
import type { RequestView } from "../../../core/types.ts";
import { UsageError } from "../../../core/errors.ts";

const model = presetModel("tiny");
const ctx: PluginContext = {
  model,
  kv: { blockSize: 4, numBlocks: 16 },
  limits: { maxBatchTokens: 64, maxBatchSeqs: 8, maxModelLen: 256 },
  seed: 0,
  log: () => {},
};

let nextId = 0;
function req(promptTokens: number[]): RequestView {
  return { id: `r${nextId++}`, promptTokens } as unknown as RequestView;
}

async function make(opts: Record<string, unknown>): Promise<RelayKvCache> {
  return (await relay.create(relay.options.parse(opts), ctx)) as RelayKvCache;
}

Deno.test("relay kvcache: a configured system prompt is tokenized with BOS", async () => {
  const kv = await make({ systemPrompt: "You are terse." });
  const p = kv.relayPrompt([])!;
  assert.deepEqual(p.tokens, model.tokenizer.encode("You are terse.", { addBos: true }));
  assert.equal(kv.relayPrompt([req([1, 2, 3])])!.id, p.id);
});

Deno.test("relay kvcache: a system prompt file that is missing is a UsageError", async () => {
  await assert.rejects(() => make({ systemPrompt: "@/nonexistent/prompt.txt" }), UsageError);
});

Deno.test("relay kvcache: automatic mode finds and keeps the shared prefix", async () => {
  const kv = await make({ minSharers: 2, minPrefix: 3 });
  const sys = [1, 50, 51, 52, 53];
  assert.equal(kv.relayPrompt([req([...sys, 9])]), undefined, "one request shares nothing");
  const first = kv.relayPrompt([req([...sys, 9]), req([...sys, 8, 7])])!;
  assert.deepEqual(first.tokens, sys);
  // A newcomer sharing less does not change the prompt while two still extend it.
  const again = kv.relayPrompt([req([...sys, 9]), req([...sys, 8]), req([1, 50, 51, 60])])!;
  assert.equal(again.id, first.id);
  // Once too few extend it, a new prefix is found.
  const next = kv.relayPrompt([req([1, 50, 51, 60, 1]), req([1, 50, 51, 60, 2])])!;
  assert.deepEqual(next.tokens, [1, 50, 51, 60]);
});

Deno.test("relay kvcache: caches and evicts blocks least recently freed first", async () => {
  const kv = await make({});
  kv.onCachedFree(3, 0, undefined);
  kv.onCachedFree(5, 1, undefined);
  kv.onCachedFree(7, 2, undefined);
  kv.onReuse(5);
  assert.equal(kv.size, 2);
  assert.equal(kv.evict(3), 3);
  assert.equal(kv.evict(3), 7);
  assert.equal(kv.evict(3), -1);
});
