import assert from "node:assert/strict";
import { kendallTau } from "../../../policies/ltr/kendall.ts";

Deno.test("kendallTau: perfect, reversed, constant and a worked example with ties", () => {
  assert.equal(kendallTau([1, 2, 3, 4], [10, 20, 30, 40]), 1);
  assert.equal(kendallTau([1, 2, 3, 4], [4, 3, 2, 1]), -1);
  assert.ok(Number.isNaN(kendallTau([1, 1, 1], [1, 2, 3])));
  // x = [1,2,2,3], y = [1,3,2,3]: pairs (C,D,tx,ty): 12 C, 13 C, 14 C, 23 tx, 24 ty, 34 C
  // -> C=4, D=0, tiesX=1, tiesY=1: tau_b = 4 / sqrt(5 * 5) = 0.8.
  assert.ok(Math.abs(kendallTau([1, 2, 2, 3], [1, 3, 2, 3]) - 0.8) < 1e-12);
  assert.throws(() => kendallTau([1, 2], [1]), RangeError);
});
