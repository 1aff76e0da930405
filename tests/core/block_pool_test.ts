import assert from "node:assert/strict";
import fc from "fast-check";
import { blockHash, BlockPool, HashIndex, ROOT_HASH } from "../../core/block_pool.ts";
import { LruBlockQueue } from "../../policies/lru_prefix/mod.ts";
import type { KvCachePolicy } from "../../core/slots.ts";

function lruPolicy(n: number, prefixCaching = true): KvCachePolicy {
  const q = new LruBlockQueue(n);
  return {
    prefixCaching,
    get size() {
      return q.size;
    },
    onCachedFree: (b) => q.push(b),
    onReuse: (b) => q.remove(b),
    evict: () => q.shift(),
  };
}

type Op =
  | { kind: "alloc" }
  | { kind: "release"; pick: number }
  | { kind: "register"; pick: number; key: number }
  | { kind: "hit"; key: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.constant({ kind: "alloc" as const }),
  fc.record({ kind: fc.constant("release" as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant("register" as const), pick: fc.nat(), key: fc.nat({ max: 5 }) }),
  fc.record({ kind: fc.constant("hit" as const), key: fc.nat({ max: 5 }) }),
);

Deno.test("block pool: no block leaked, freed twice or shared without a reference", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 12 }),
      fc.boolean(),
      fc.array(opArb, { maxLength: 120 }),
      (n, caching, ops) => {
        const bs = 4;
        const pool = new BlockPool(n, bs, lruPolicy(n, caching));
        const refs = new Array<number>(n).fill(0); // the model: references we hold
        const held: number[] = []; // one entry per reference
        const tokensOf = (key: number) => [key, key + 1, key + 2, key + 3];
        for (const op of ops) {
          if (op.kind === "alloc") {
            const free = pool.freeBlocks;
            const b = pool.allocate(0);
            if (free === 0) assert.equal(b, -1);
            else {
              assert.ok(b >= 0);
              assert.equal(refs[b], 0, `block ${b} handed out while referenced`);
              refs[b] = 1;
              held.push(b);
            }
          } else if (op.kind === "release" && held.length > 0) {
            const [b] = held.splice(op.pick % held.length, 1);
            pool.release(b, 0);
            refs[b]--;
          } else if (op.kind === "register" && held.length > 0) {
            const b = held[op.pick % held.length];
            const toks = tokensOf(op.key);
            pool.register(b, blockHash(ROOT_HASH, toks, 0, bs), ROOT_HASH, toks, 0);
          } else if (op.kind === "hit") {
            const toks = tokensOf(op.key);
            const b = pool.lookup(blockHash(ROOT_HASH, toks, 0, bs), ROOT_HASH, toks, 0);
            if (b >= 0) {
              assert.ok(caching, "a lookup hit with prefix caching off");
              pool.acquire(b);
              refs[b]++;
              held.push(b);
            }
          }
          // Invariants: counts agree with the model, and free = unreferenced.
          let unreferenced = 0;
          for (let b = 0; b < n; b++) {
            assert.equal(pool.refCount(b), refs[b], `reference count of block ${b}`);
            if (refs[b] === 0) unreferenced++;
          }
          assert.equal(pool.freeBlocks, unreferenced);
          assert.equal(pool.usedBlocks + pool.freeBlocks, n);
        }
        // Releasing every reference returns every block.
        for (const b of held) pool.release(b, 0);
        assert.equal(pool.freeBlocks, n);
        assert.throws(() => pool.release(0, 0), /released while free/);
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("block pool: a cached block is found again only with the same parent and tokens", () => {
  const pool = new BlockPool(4, 2, lruPolicy(4));
  const b = pool.allocate(0);
  const h = blockHash(ROOT_HASH, [7, 8], 0, 2);
  pool.register(b, h, ROOT_HASH, [7, 8], 0);
  pool.release(b, 0);
  assert.equal(pool.lookup(h, ROOT_HASH, [7, 8], 0), b);
  assert.equal(pool.lookup(h, 12345, [7, 8], 0), -1, "other parent");
  assert.equal(pool.lookup(h, ROOT_HASH, [7, 9], 0), -1, "other tokens under a colliding hash");
  // Least recently freed goes first: allocate all, the cached one last.
  const order = [pool.allocate(0), pool.allocate(0), pool.allocate(0), pool.allocate(0)];
  assert.equal(order[3], b);
  assert.equal(pool.evictions, 1);
  assert.equal(pool.lookup(h, ROOT_HASH, [7, 8], 0), -1, "evicted blocks are forgotten");
});

Deno.test("block hashes are stable and chain on the parent", () => {
  fc.assert(
    fc.property(
      fc.array(fc.nat({ max: 50000 }), { minLength: 4, maxLength: 4 }),
      fc.nat(),
      (toks, parent) => {
        const h = blockHash(parent, toks, 0, 4);
        assert.equal(h, blockHash(parent, [...toks], 0, 4));
        assert.ok(Number.isSafeInteger(h) && h >= 0);
        assert.notEqual(h, blockHash(parent, [toks[0] + 1, ...toks.slice(1)], 0, 4));
        assert.notEqual(h, blockHash(parent + 1, toks, 0, 4));
      },
    ),
  );
  // The hash reads only the given range of a larger array.
  assert.equal(blockHash(ROOT_HASH, [1, 2, 3, 4], 0, 4), blockHash(0, [0, 1, 2, 3, 4], 1, 5));
});

Deno.test("the hash index agrees with a Map under random inserts and deletes", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 40 })), { maxLength: 400 }),
      (ops) => {
        const index = new HashIndex(32);
        const model = new Map<number, number>();
        // Keys spread over 52 bits but colliding often in a small table.
        const key = (k: number) => k * 1048583 * 4294967296 + k * 64;
        for (const [insert, k] of ops) {
          if (insert && (model.has(key(k)) || model.size < 32)) {
            assert.equal(index.add(key(k), k), !model.has(key(k)));
            if (!model.has(key(k))) model.set(key(k), k);
          } else if (!insert) {
            index.delete(key(k), k);
            model.delete(key(k));
          }
          for (let j = 0; j <= 40; j++) assert.equal(index.get(key(j)), model.get(key(j)) ?? -1);
        }
      },
    ),
    { numRuns: 200 },
  );
});
