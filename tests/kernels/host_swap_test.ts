import assert from "node:assert/strict";
import { HostSwapSpace } from "../../kernels/host_swap.ts";

Deno.test("host swap space: blocks go out and come back into other blocks, across every pool", () => {
  const blockFloats = 3;
  const pools = [new Float32Array(4 * blockFloats), new Float32Array(4 * blockFloats)];
  pools.forEach((p, k) => p.forEach((_, i) => (p[i] = 100 * k + i)));
  const before = pools.map((p) => p.slice());
  const host = new HostSwapSpace(pools, blockFloats);
  host.swap([{ block: 1, slot: 7 }, { block: 3, slot: 2 }], []);
  assert.equal(host.slotsInUse, 2);
  // The freed blocks are overwritten by someone else, then the swapped ones come back.
  for (const p of pools) p.fill(-1);
  host.swap([], [{ slot: 7, block: 0 }, { slot: 2, block: 2 }]);
  assert.equal(host.slotsInUse, 0);
  pools.forEach((p, k) => {
    assert.deepEqual([...p.subarray(0, 3)], [...before[k].subarray(3, 6)]);
    assert.deepEqual([...p.subarray(6, 9)], [...before[k].subarray(9, 12)]);
  });
  assert.throws(() => host.swap([], [{ slot: 7, block: 0 }]), /slot 7 holds no block/);
});
