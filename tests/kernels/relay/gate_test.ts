import assert from "node:assert/strict";
import { relayIoBound, useRelay } from "../../../kernels/relay/gate.ts";

Deno.test("relay gate: IO bound matches B(S+U)/(S+BU) and its limits", () => {
  assert.equal(relayIoBound(1, 2048, 100), 1);
  assert.ok(Math.abs(relayIoBound(32, 2048, 128) - (32 * 2176) / (2048 + 32 * 128)) < 1e-12);
  // Grows towards B as the shared part dominates.
  assert.ok(relayIoBound(8, 1e9, 1) > 7.99);
  assert.equal(relayIoBound(8, 0, 10), 1);
  assert.throws(() => relayIoBound(0, 10, 10), RangeError);
});

Deno.test("relay gate: needs enough sharers and a long enough prompt", () => {
  assert.equal(useRelay(1, 2048), false);
  assert.equal(useRelay(8, 2048), true);
  assert.equal(useRelay(8, 100), false);
  assert.equal(useRelay(8, 0, { minPrefix: 0 }), false);
  assert.equal(useRelay(2, 64, { minSharers: 2, minPrefix: 32 }), true);
});
