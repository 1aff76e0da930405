import assert from "node:assert/strict";
import { dummyWeights, EMBEDDING_STD, fillDummy } from "../../../core/model/dummy.ts";
import { presetConfig } from "../../../core/model/presets.ts";
import { naiveGreedy, naiveLogits } from "../../../kernels/reference/naive.ts";

function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

Deno.test("dummy weights are deterministic bit for bit and depend on the seed", () => {
  const c = presetConfig("tiny-gqa")!;
  const a = dummyWeights(c, 5);
  const b = dummyWeights(c, 5);
  const other = dummyWeights(c, 6);
  assert.deepEqual(bits(a.tokenEmbedding), bits(b.tokenEmbedding));
  assert.deepEqual(bits(a.lmHead), bits(b.lmHead));
  for (let l = 0; l < c.nLayers; l++) {
    for (const k of ["wq", "wk", "wv", "wo", "w1", "w2", "w3"] as const) {
      assert.deepEqual(bits(a.layers[l][k]), bits(b.layers[l][k]));
      assert.notDeepEqual(bits(a.layers[l][k]), bits(other.layers[l][k]));
    }
  }
  // Different tensors get different streams.
  assert.notDeepEqual(a.layers[0].wq, a.layers[1].wq);
  assert.notDeepEqual(a.layers[0].wq.subarray(0, 16), a.layers[0].wk.subarray(0, 16));
});

Deno.test("dummy weights have the right shapes, unit norms and scales", () => {
  const c = presetConfig("tiny-gqa")!;
  const w = dummyWeights(c, 0);
  assert.equal(w.tokenEmbedding.length, c.vocabSize * c.dim);
  assert.equal(w.layers.length, c.nLayers);
  assert.equal(w.layers[0].wk.length, c.nKvHeads * c.headDim * c.dim);
  assert.equal(w.layers[0].w2.length, c.dim * c.hiddenDim);
  assert.ok(w.finalNorm.every((x) => x === 1));
  assert.ok(w.layers[0].attnNorm.every((x) => x === 1));
  assert.notEqual(w.lmHead, w.tokenEmbedding);
  const std = (a: Float32Array) => Math.sqrt(a.reduce((s, x) => s + x * x, 0) / a.length);
  assert.ok(Math.abs(std(w.layers[0].w1) * Math.sqrt(c.dim) - 1) < 0.05);
  assert.ok(Math.abs(std(w.layers[0].w2) * Math.sqrt(c.hiddenDim) - 1) < 0.05);
  assert.ok(Math.abs(std(w.tokenEmbedding) / EMBEDDING_STD - 1) < 0.05);
  // A tied preset shares one array.
  const small = presetConfig("small")!;
  const ws = dummyWeights({ ...small, nLayers: 1 }, 0);
  assert.equal(ws.lmHead, ws.tokenEmbedding);
});

Deno.test("fillDummy values are uniform in [-sqrt(3) std, sqrt(3) std)", () => {
  const a = new Float32Array(10000);
  fillDummy(a, 1, 2, 1);
  let min = Infinity, max = -Infinity, mean = 0;
  for (const x of a) {
    min = Math.min(min, x);
    max = Math.max(max, x);
    mean += x / a.length;
  }
  assert.ok(min >= -Math.sqrt(3) && max < Math.sqrt(3));
  assert.ok(min < -1.6 && max > 1.6);
  assert.ok(Math.abs(mean) < 0.05);
});

Deno.test("dummy models give varied logits and greedy text", () => {
  for (const name of ["tiny", "tiny-gqa"]) {
    const c = presetConfig(name)!;
    const w = dummyWeights(c, 0);
    const logits = naiveLogits(w, c, [1, 72, 101, 108]);
    const spread = Math.max(...logits) - Math.min(...logits);
    assert.ok(spread > 0.5, `${name}: logits spread ${spread}`);
    const out = naiveGreedy(w, c, [1, 72, 101, 108, 108, 111], 12);
    assert.ok(new Set(out).size >= 3, `${name}: greedy output ${out}`);
  }
});
