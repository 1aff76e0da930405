import assert from "node:assert/strict";
import fc from "fast-check";
import {
  type BlockChain,
  blockHash,
  BlockPool,
  HashIndex,
  ROOT_HASH,
} from "../../core/block_pool.ts";
import { LruBlockQueue } from "../../core/lru_queue.ts";
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

/** A token sequence the pool can hash, as the engine's requests are. */
class TestChain implements BlockChain {
  cacheGroup: object | undefined = undefined;
  readonly #hashes: number[] = [];
  constructor(readonly tokens: readonly number[]) {}
  hashOfBlock(k: number, bs: number): number {
    for (let j = this.#hashes.length; j <= k; j++) {
      const parent = j === 0 ? ROOT_HASH : this.#hashes[j - 1];
      this.#hashes.push(blockHash(parent, this.tokens, j * bs, (j + 1) * bs));
    }
    return this.#hashes[k];
  }
  parentHashOfBlock(k: number, bs: number): number {
    return k === 0 ? ROOT_HASH : this.hashOfBlock(k - 1, bs);
  }
  blockArray(): readonly number[] {
    return this.tokens;
  }
  blockOffset(k: number, bs: number): number {
    return k * bs;
  }
}

type ChainOp =
  | { kind: "start"; base: number; shared: number; blocks: number }
  | { kind: "grow" | "end" | "preempt" | "restart" | "probe"; pick: number }
  | { kind: "reset" };

const chainOpArb: fc.Arbitrary<ChainOp> = fc.oneof(
  { arbitrary: fc.constant({ kind: "reset" as const }), weight: 1 },
  {
    arbitrary: fc.record({
      kind: fc.constant("start" as const),
      base: fc.nat({ max: 1 }),
      shared: fc.nat({ max: 4 }),
      blocks: fc.integer({ min: 1, max: 4 }),
    }),
    weight: 6,
  },
  {
    arbitrary: fc.record({
      kind: fc.constantFrom("grow" as const, "grow" as const, "end" as const, "preempt" as const),
      pick: fc.nat(),
    }),
    weight: 12,
  },
  {
    arbitrary: fc.record({
      kind: fc.constantFrom("restart" as const, "probe" as const),
      pick: fc.nat(),
    }),
    weight: 3,
  },
);

Deno.test("block pool: lazy registration behaves exactly as registering every block at once", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 2, max: 14 }),
      fc.array(chainOpArb, { maxLength: 150 }),
      (n, ops) => {
        const bs = 2;
        const pools = [
          new BlockPool(n, bs, lruPolicy(n), { lazyRegistration: true }),
          new BlockPool(n, bs, lruPolicy(n), { lazyRegistration: false }),
        ];
        type Seq = {
          chains: TestChain[];
          tables: number[][];
          blocks: number;
          done: number;
          state: "running" | "waiting" | "ended";
        };
        const seqs: Seq[] = [];
        let serial = 0;
        /** Run `f` on both pools; both must answer the same. */
        const both = <T>(what: string, f: (pool: BlockPool, i: number) => T): T => {
          const [a, b] = [f(pools[0], 0), f(pools[1], 1)];
          assert.deepEqual(a, b, `${what}: lazy ${a}, eager ${b}`);
          return a;
        };
        /**
         * Prefix hits from block 0, as an admission does; returns the blocks found. The lazy
         * pool answers through `prefixHits`, the eager one through single lookups.
         */
        const hits = (pool: BlockPool, chain: TestChain, max: number): number[] => {
          const found: number[] = [];
          if (pool === pools[0]) {
            found.length = pool.prefixHits(chain, max, found);
            return found;
          }
          for (let k = 0; k < max; k++) {
            const b = pool.lookup(
              chain.hashOfBlock(k, bs),
              chain.parentHashOfBlock(k, bs),
              chain.tokens,
              k * bs,
            );
            if (b < 0) break;
            found.push(b);
          }
          return found;
        };
        const admit = (s: Seq) => {
          const found = both("hits", (pool, i) => hits(pool, s.chains[i], s.blocks - 1));
          pools.forEach((pool, i) => {
            for (const b of found) pool.acquire(b);
            s.tables[i] = [...found];
          });
          s.done = found.length;
          s.state = "running";
        };
        const release = (s: Seq) => {
          pools.forEach((pool, i) => {
            for (let j = s.tables[i].length - 1; j >= 0; j--) pool.release(s.tables[i][j], 0);
            s.tables[i] = [];
            pool.leave(s.chains[i]);
          });
        };
        const pick = (p: number, state: Seq["state"]) => {
          const c = seqs.filter((s) => s.state === state);
          return c.length > 0 ? c[p % c.length] : undefined;
        };
        for (const op of ops) {
          if (op.kind === "start") {
            // Three families of prompts; a chain shares `shared` blocks with its family's root.
            const tokens: number[] = [];
            for (let t = 0; t < op.blocks * bs; t++) {
              tokens.push(
                t < op.shared * bs ? 1000 * (op.base + 1) + t : 100000 + 100 * serial + t,
              );
            }
            serial++;
            const s: Seq = {
              chains: [new TestChain(tokens), new TestChain(tokens)],
              tables: [[], []],
              blocks: op.blocks,
              done: 0,
              state: "waiting",
            };
            seqs.push(s);
            admit(s);
          } else if (op.kind === "grow") {
            const s = pick(op.pick, "running");
            if (!s || s.done >= s.blocks) continue;
            const b = both("allocate", (pool) => pool.allocate(0));
            if (b < 0) continue;
            pools.forEach((pool, i) => {
              s.tables[i].push(b);
              pool.commitBlock(s.chains[i], s.done, b);
            });
            s.done++;
          } else if (op.kind === "end" || op.kind === "preempt") {
            const s = pick(op.pick, "running");
            if (!s) continue;
            release(s);
            s.state = op.kind === "end" ? "ended" : "waiting";
          } else if (op.kind === "restart") {
            const s = pick(op.pick, "waiting");
            if (s) admit(s);
          } else if (op.kind === "probe") {
            const s = seqs.length > 0 ? seqs[op.pick % seqs.length] : undefined;
            if (s) both("probe", (pool, i) => hits(pool, s.chains[i], s.blocks));
          } else {
            // As after an executor swap: everything is preempted, then the cache is dropped.
            for (const s of seqs) {
              if (s.state !== "running") continue;
              release(s);
              s.state = "waiting";
            }
            pools.forEach((pool) => pool.dropCache(0));
          }
          both("free blocks", (pool) => pool.freeBlocks);
          both("evictions", (pool) => pool.evictions);
          both("cached", (pool) => Array.from({ length: n }, (_, b) => pool.isCached(b)));
        }
      },
    ),
    { numRuns: 400 },
  );
});

Deno.test("block pool: a lazy group's blocks are hit by position only while the tokens agree", () => {
  const bs = 2;
  const pool = new BlockPool(8, bs, lruPolicy(8));
  const owner = new TestChain([1, 2, 3, 4, 5, 6]);
  const blocks = [0, 1, 2].map((k) => {
    const b = pool.allocate(0);
    pool.commitBlock(owner, k, b);
    return b;
  });
  const found: number[] = [];
  // Same first block, different second: one hit, as a hash lookup would find.
  const other = new TestChain([1, 2, 9, 9, 9, 9]);
  assert.equal(pool.prefixHits(other, 3, found), 1);
  assert.equal(found[0], blocks[0]);
  assert.equal(pool.prefixHits(new TestChain([1, 2, 3, 4, 5, 6, 7, 8]), 3, found), 3);
  assert.deepEqual(found.slice(0, 3), blocks);
  // The owner placed again computes its blocks anew: the copies are duplicates, not cached.
  for (let k = 2; k >= 0; k--) pool.release(blocks[k], 0);
  pool.leave(owner);
  const again = pool.allocate(0);
  pool.commitBlock(owner, 0, again);
  assert.equal(pool.isCached(again), false, "a duplicate of a cached block is not cached");
  assert.equal(pool.prefixHits(owner, 3, found), 3, "the first copies still serve hits");
  // Looking up the first block by hash registers the group: the same blocks, by hash now.
  assert.equal(pool.lookup(owner.hashOfBlock(0, bs), ROOT_HASH, owner.tokens, 0), blocks[0]);
  assert.equal(
    pool.lookup(owner.hashOfBlock(1, bs), owner.hashOfBlock(0, bs), owner.tokens, bs),
    blocks[1],
  );
});
