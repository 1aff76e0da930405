import assert from "node:assert/strict";
import { AheadCache, type AheadCandidate } from "../../../kernels/webgpu/decode_ahead.ts";

const BS = 4;
const POOL = 64; // scratch blocks are ids 64 ..

function candidate(over: Partial<AheadCandidate> = {}): AheadCandidate {
  // A decode at position 10 with blocks for positions 0 .. 11.
  return {
    id: "a",
    tokens: [7],
    startPos: 10,
    blockTable: [3, 4, 5],
    prefixLen: 0,
    remaining: 20,
    ...over,
  };
}

/** The query of the decode at `pos` feeding `token`. */
function at(pos: number, token: number, table: number[], id = "a") {
  return { id, tokens: [token], startPos: pos, blockTable: table, prefixLen: 0 };
}

Deno.test("decode ahead: serves the recorded chain and moves scratch blocks into the pool", () => {
  const cache = new AheadCache(5, 2, BS, 256, POOL);
  const plan = cache.plan([candidate()], 0)!;
  assert.equal(plan.steps, 5);
  // Positions 11 .. 15: block 2 is the engine's, block 3 is not allocated yet.
  assert.equal(plan.tables[0].length, 4);
  assert.deepEqual(plan.tables[0].slice(0, 3), [3, 4, 5]);
  const scratch = plan.tables[0][3];
  assert.ok(scratch >= POOL);
  cache.record(["a"], [100], [101, 102, 103, 104, 105]);

  assert.equal(cache.serve(at(11, 100, [3, 4, 5]), 1), 101);
  assert.deepEqual(cache.takeCopies(), { from: [], to: [] });
  assert.equal(cache.serve(at(12, 101, [3, 4, 5, 9]), 2), 102);
  assert.deepEqual(cache.takeCopies(), { from: [scratch], to: [9] });
  assert.equal(cache.serve(at(13, 102, [3, 4, 5, 9]), 3), 103);
  assert.equal(cache.serve(at(14, 103, [3, 4, 5, 9]), 4), 104);
  assert.equal(cache.serve(at(15, 104, [3, 4, 5, 9]), 5), 105);
  assert.deepEqual(cache.takeCopies(), { from: [], to: [] }, "one copy per block");
  assert.equal(cache.serve(at(16, 105, [3, 4, 5, 9, 10]), 6), undefined, "chain used up");
  assert.equal(cache.hits, 5);
});

Deno.test("decode ahead: anything but the exact continuation drops the entry", () => {
  const fresh = () => {
    const cache = new AheadCache(4, 2, BS, 256, POOL);
    cache.plan([candidate()], 0);
    cache.record(["a"], [100], [101, 102, 103, 104]);
    return cache;
  };
  const misses: [string, ReturnType<typeof at>][] = [
    ["another fed token", at(11, 99, [3, 4, 5])],
    ["another position", at(12, 100, [3, 4, 5, 9])],
    ["a moved block", at(11, 100, [3, 4, 6])],
    ["a prefill", { ...at(0, 1, [3, 4, 5]), tokens: [1, 2, 3] }],
    ["another prefix", { ...at(11, 100, [3, 4, 5]), prefixLen: 2 }],
  ];
  for (const [why, q] of misses) {
    const cache = fresh();
    assert.equal(cache.serve(q, 1), undefined, why);
    assert.equal(cache.serve(at(11, 100, [3, 4, 5]), 2), undefined, `${why}: entry dropped`);
  }
  const other = fresh();
  assert.equal(other.serve(at(11, 100, [3, 4, 5], "b"), 1), undefined, "another sequence");
  assert.equal(other.serve(at(11, 100, [3, 4, 5]), 1), 101);
});

Deno.test("decode ahead: plans only what fits", () => {
  // A fresh cache each time: an unused plan would lower the next one's depth.
  const plan = (c: AheadCandidate[]) => new AheadCache(8, 2, BS, 256, POOL).plan(c, 0);
  const three = ["a", "b", "c"].map((id) => candidate({ id }));
  assert.equal(plan(three), undefined, "more sequences than allowed");
  assert.equal(plan([candidate({ remaining: 0 })]), undefined, "nothing left to make");
  assert.equal(plan([candidate({ remaining: 3 })])!.steps, 3, "up to the cap");
  const full = Array.from({ length: 64 }, (_, i) => i);
  const end = (startPos: number) => plan([candidate({ startPos, blockTable: full })]);
  assert.equal(end(250)!.steps, 5, "up to the longest context");
  assert.equal(end(255), undefined);
  assert.equal(plan([]), undefined);
  assert.equal(new AheadCache(0, 2, BS, 256, POOL).plan([candidate()], 0), undefined);
});

Deno.test("decode ahead: scratch blocks are reclaimed from other and stale entries", () => {
  // One sequence's worth of scratch: one block.
  const cache = new AheadCache(4, 1, BS, 256, POOL);
  assert.equal(AheadCache.scratchBlocks(4, 1, BS), 1);
  const far = { startPos: 11, blockTable: [3, 4, 5] }; // positions 12 .. 15: one new block
  cache.plan([candidate({ id: "a", ...far })], 0);
  cache.record(["a"], [100], [101, 102, 103, 104]);
  // (a's plan went unused, so b's is shorter: 2 tokens, positions 16 and 17.)
  const b = cache.plan([candidate({ id: "b", startPos: 15, blockTable: [6, 7, 8, 9] })], 1)!;
  assert.equal(b.steps, 2);
  assert.equal(b.tables[0].length, 5, "needs the scratch block: a's entry gave it up");
  assert.equal(cache.serve(at(12, 100, [3, 4, 5, 9]), 2), undefined);

  const stale = new AheadCache(4, 2, BS, 256, POOL);
  stale.plan([candidate()], 0);
  stale.record(["a"], [100], [101, 102, 103, 104]);
  stale.sweep(10);
  assert.equal(stale.serve(at(11, 100, [3, 4, 5]), 10), 101, "recent entries stay");
  stale.sweep(40);
  assert.equal(stale.serve(at(12, 101, [3, 4, 5, 9]), 40), undefined, "stale ones go");
});

Deno.test("decode ahead: the depth follows how much of each plan gets used", () => {
  const cache = new AheadCache(8, 2, BS, 1024, POOL);
  assert.equal(cache.depth, 8);
  // Each plan is cut short after two tokens (a request arrives, say): the depth shrinks
  // towards twice that.
  let pos = 10;
  for (let round = 0; round < 6; round++) {
    const blocks = Array.from({ length: Math.ceil((pos + 1) / BS) }, (_, i) => i);
    const plan = cache.plan([candidate({ startPos: pos, blockTable: blocks })], round)!;
    const chain = Array.from({ length: plan.steps + 1 }, (_, i) => 100 + i);
    cache.record(["a"], [chain[0]], chain.slice(1));
    for (let k = 0; k < 2; k++) {
      const table = Array.from({ length: Math.ceil((pos + 2 + k) / BS) }, (_, i) => i);
      assert.equal(cache.serve(at(pos + 1 + k, chain[k], table), round), chain[k + 1]);
    }
    pos += 3;
  }
  assert.equal(cache.depth, 4);
  // Plans used to the end: it grows back.
  for (let round = 0; round < 6; round++) {
    const blocks = Array.from({ length: Math.ceil((pos + 1) / BS) }, (_, i) => i);
    const plan = cache.plan([candidate({ startPos: pos, blockTable: blocks })], round)!;
    const chain = Array.from({ length: plan.steps + 1 }, (_, i) => 100 + i);
    cache.record(["a"], [chain[0]], chain.slice(1));
    for (let k = 0; k < plan.steps; k++) {
      const table = Array.from({ length: Math.ceil((pos + 2 + k) / BS) }, (_, i) => i);
      assert.equal(cache.serve(at(pos + 1 + k, chain[k], table), round), chain[k + 1]);
    }
    pos += plan.steps + 1;
  }
  assert.equal(cache.depth, 8);
});

Deno.test("decode ahead: unused plans stop, and one is tried again later", () => {
  const cache = new AheadCache(8, 2, BS, 1024, POOL);
  let tries = 0;
  let plans = 0;
  // A new request every step: no plan is ever used.
  for (let step = 0; step < 200; step++) {
    tries++;
    if (cache.plan([candidate({ id: `r${step}` })], step)) plans++;
  }
  assert.ok(plans < 30, `${plans} plans in ${tries} steps`);
  assert.ok(plans > 5, "it keeps trying now and then");
});

Deno.test("decode ahead: covers tells a hit without serving it", () => {
  const cache = new AheadCache(4, 2, BS, 256, POOL);
  cache.plan([candidate()], 0);
  cache.record(["a"], [100], [101, 102, 103, 104]);
  assert.equal(cache.covers(at(11, 100, [3, 4, 5])), true);
  assert.equal(cache.covers(at(11, 99, [3, 4, 5])), false);
  assert.equal(cache.covers(at(12, 101, [3, 4, 5])), false, "not the next position yet");
  assert.equal(cache.hits, 0);
  assert.equal(cache.serve(at(11, 100, [3, 4, 5]), 1), 101);
  assert.equal(cache.covers(at(12, 101, [3, 4, 5])), false, "block 3 not allocated yet");
  assert.equal(cache.covers(at(12, 101, [3, 4, 5, 9])), true);
});

Deno.test("decode ahead: a sub-step that costs much against a read-back keeps plans short", () => {
  const cheap = new AheadCache(8, 2, BS, 256, POOL);
  cheap.passCost(0.010, 0.001); // a GPU: a millisecond against Deno's 10 ms read-back
  assert.equal(cheap.depth, 8);
  const dear = new AheadCache(8, 2, BS, 256, POOL);
  dear.passCost(0.010, 0.080); // a software adapter running a larger model
  assert.equal(dear.depth, 1);
  assert.equal(dear.plan([candidate()], 0)!.steps, 1);
});
