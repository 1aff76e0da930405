import assert from "node:assert/strict";
import { subgroupLayoutOk } from "../../../kernels/webgpu/wgsl/matmul.ts";

/** A probe record for subgroups of `size` laid out as aligned runs. */
function record(size: number, n = 256): Uint32Array {
  const r = new Uint32Array(3 * n);
  for (let i = 0; i < n; i++) r.set([i % size, size, size], 3 * i);
  return r;
}

Deno.test("webgpu subgroups: aligned full subgroups dividing 32 are accepted", () => {
  for (const size of [1, 2, 4, 8, 16, 32]) assert.equal(subgroupLayoutOk(record(size)), true);
});

Deno.test("webgpu subgroups: other layouts fall back to workgroup memory", () => {
  assert.equal(subgroupLayoutOk(record(64)), false, "a subgroup spanning two rows");
  assert.equal(subgroupLayoutOk(record(12)), false, "a size that does not divide 32");
  const partial = record(32);
  partial[3 * 5 + 2] = 31; // a subgroup with an inactive invocation
  assert.equal(subgroupLayoutOk(partial), false);
  const shuffled = record(8);
  shuffled[3 * 9] = 0; // invocation 9 is not lane 1 of its subgroup
  assert.equal(subgroupLayoutOk(shuffled), false);
  assert.equal(subgroupLayoutOk(new Uint32Array(0)), false);
});
