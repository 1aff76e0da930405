import assert from "node:assert/strict";
import { PRESET_NAMES, presetConfig } from "../../../core/model/presets.ts";
import { kvBytesPerToken, parameterCount } from "../../../core/model/size.ts";

Deno.test("every preset is a consistent Llama shape", () => {
  assert.deepEqual(PRESET_NAMES, ["tiny", "tiny-gqa", "small", "llama2c-15m", "llama2c-110m"]);
  for (const name of PRESET_NAMES) {
    const c = presetConfig(name)!;
    assert.equal(c.nHeads * c.headDim, c.dim, name);
    assert.equal(c.nHeads % c.nKvHeads, 0, name);
    assert.ok(c.maxSeqLen >= 512, name);
    assert.ok(c.vocabSize >= 259, name);
    assert.equal(c.bosTokenId, 1);
    assert.deepEqual(c.eosTokenIds, [2]);
  }
  const gqa = presetConfig("tiny-gqa")!;
  assert.equal(gqa.nHeads, 8);
  assert.equal(gqa.nKvHeads, 2);
  assert.equal(presetConfig("nope"), undefined);
  assert.equal(presetConfig("toString"), undefined);
  // A returned config is a copy.
  presetConfig("tiny")!.eosTokenIds.push(7);
  assert.deepEqual(presetConfig("tiny")!.eosTokenIds, [2]);
});

Deno.test("parameter counts match the named sizes", () => {
  assert.ok(parameterCount(presetConfig("tiny")!) < 1_000_000);
  assert.ok(parameterCount(presetConfig("tiny-gqa")!) < 1_000_000);
  const m15 = parameterCount(presetConfig("llama2c-15m")!);
  assert.ok(Math.abs(m15 - 15.2e6) < 0.1e6, `${m15}`);
  const m110 = parameterCount(presetConfig("llama2c-110m")!);
  assert.ok(Math.abs(m110 - 109.5e6) < 0.5e6, `${m110}`);
  // Hand count for tiny: embedding + LM head + 2 layers + final norm.
  const layer = 4 * 64 * 64 + 3 * 64 * 176 + 2 * 64;
  assert.equal(parameterCount(presetConfig("tiny")!), 2 * 259 * 64 + 2 * layer + 64);
  // GQA shrinks k/v projections: 2 KV heads of 8 dims.
  const gqaLayer = 2 * 64 * 64 + 2 * 64 * 16 + 3 * 64 * 176 + 2 * 64;
  assert.equal(parameterCount(presetConfig("tiny-gqa")!), 2 * 259 * 64 + 2 * gqaLayer + 64);
});

Deno.test("KV bytes per token", () => {
  assert.equal(kvBytesPerToken(presetConfig("tiny")!, 4), 2 * 2 * 64 * 4);
  assert.equal(kvBytesPerToken(presetConfig("tiny-gqa")!, 2), 2 * 2 * 16 * 2);
  assert.equal(kvBytesPerToken(presetConfig("llama2c-110m")!, 2), 2 * 12 * 768 * 2);
});
