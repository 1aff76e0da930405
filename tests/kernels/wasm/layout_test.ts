import assert from "node:assert/strict";
import fc from "fast-check";
import { UsageError } from "../../../core/errors.ts";
import { presetConfig } from "../../../core/model/presets.ts";
import { planMemory } from "../../../kernels/wasm/layout.ts";
import { fromBf16, toBf16 } from "../../../kernels/wasm/pack.ts";

const base = {
  threads: 2,
  blockSize: 16,
  numBlocks: 64,
  maxLen: 2048,
  maxSeqs: 64,
  microBatch: 64,
};

Deno.test("a plan over 4 GiB is refused with a UsageError that says what to change", () => {
  const config = presetConfig("llama2c-110m")!;
  // 110M f32 weights fit, but 4096 blocks of 16 tokens of f32 KV over 12 layers do not.
  assert.throws(
    () => planMemory({ ...base, config, dtype: "f32", numBlocks: 4096 }),
    (e: unknown) =>
      e instanceof UsageError && /4 GiB/.test(e.message) && /kv cache/.test(e.message) &&
      /bf16/.test(e.message),
  );
  const ok = planMemory({ ...base, config, dtype: "bf16" });
  assert.ok(ok.pages <= 65536);
});

Deno.test("bf16 halves the weight bytes and a tied LM head takes no space of its own", () => {
  const config = presetConfig("llama2c-15m")!;
  const f32 = planMemory({ ...base, config, dtype: "f32" });
  const bf16 = planMemory({ ...base, config, dtype: "bf16" });
  assert.equal(f32.lmHead, f32.embedding);
  assert.equal(bf16.breakdown.weights * 2 - f32.breakdown.weights < 4 * 288 * 7 * 2, true);
  const untied = planMemory({ ...base, config: { ...config, tieEmbeddings: false }, dtype: "f32" });
  assert.notEqual(untied.lmHead, untied.embedding);
  assert.ok(untied.breakdown.weights > f32.breakdown.weights);
});

Deno.test("bf16 rounding is to nearest, ties to even, and exact on bf16 values", () => {
  fc.assert(
    fc.property(fc.float({ noNaN: true, noDefaultInfinity: true }), (x) => {
      const r = fromBf16(toBf16(x));
      // Exact for values already representable; otherwise within half a bf16 step.
      assert.equal(fromBf16(toBf16(r)), r);
      // (Normal range only: subnormals keep fewer significant bits.)
      if (Math.abs(x) > 2 ** -126 && Math.abs(x) < 1e38) {
        assert.ok(Math.abs(r - x) <= Math.abs(x) * 2 ** -8);
      }
    }),
  );
  assert.equal(fromBf16(toBf16(1 + 2 ** -8)), 1); // tie goes to even (1.0)
  assert.equal(fromBf16(toBf16(1 + 3 * 2 ** -8)), 1 + 2 ** -6); // tie goes to even (odd below)
  assert.ok(Number.isNaN(fromBf16(toBf16(NaN))));
});
