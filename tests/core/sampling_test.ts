import assert from "node:assert/strict";
import fc from "fast-check";
import {
  argmax,
  mix32,
  sampleToken,
  sampleTopK,
  tokenLogprob,
  uniform,
} from "../../core/sampling.ts";
import type { SamplingParams } from "../../core/types.ts";

function params(over: Partial<SamplingParams> = {}): SamplingParams {
  return {
    temperature: 1,
    topK: 0,
    topP: 1,
    seed: 0,
    maxTokens: 16,
    stopTokenIds: [],
    stop: [],
    ignoreEos: false,
    logprobs: -1,
    ...over,
  };
}

function logitsOf(probs: number[]): Float32Array {
  return Float32Array.from(probs, (p) => Math.log(p));
}

Deno.test("uniform reproduces the documented recipe's test vectors", () => {
  // Other kernels (WASM, WGSL) check themselves against these values.
  const vectors: [number, number, number][] = [
    [0, 0, 3400821],
    [0, 1, 1437959],
    [1, 0, 16545682],
    [42, 7, 13453290],
    [-1, 1000, 5474680],
  ];
  for (const [seed, index, scaled] of vectors) assert.equal(uniform(seed, index), scaled / 2 ** 24);
  assert.equal(mix32(0), 0);
  assert.notEqual(mix32(1), 1);
});

Deno.test("uniform lies in [0, 1), is a multiple of 2^-24 and looks uniform", () => {
  let sum = 0;
  const buckets = new Array(10).fill(0);
  const n = 20000;
  for (let i = 0; i < n; i++) {
    const u = uniform(7, i);
    assert.ok(u >= 0 && u < 1);
    assert.ok(Number.isInteger(u * 2 ** 24));
    sum += u;
    buckets[Math.floor(u * 10)]++;
  }
  assert.ok(Math.abs(sum / n - 0.5) < 0.01);
  for (const b of buckets) assert.ok(Math.abs(b / n - 0.1) < 0.01, `bucket share ${b / n}`);
  assert.notEqual(uniform(1, 5), uniform(2, 5));
});

Deno.test("greedy takes the argmax, ties to the lowest id", () => {
  const logits = Float32Array.from([0.1, 3, -2, 3, 1]);
  assert.equal(sampleToken(logits, params({ temperature: 0 }), 0).token, 1);
  assert.equal(argmax([NaN, 1, 1]), 1);
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: -5, max: 5 }), { minLength: 1, maxLength: 50 }),
      (xs) => {
        const t = sampleToken(Float32Array.from(xs), params({ temperature: 0, seed: 3 }), 9).token;
        assert.equal(t, xs.indexOf(Math.max(...xs)));
      },
    ),
  );
});

Deno.test("a draw depends only on (seed, outputIndex), not on call order", () => {
  const logits = Float32Array.from({ length: 100 }, (_, i) => Math.sin(i) * 2);
  const p = params({ seed: 1234, topK: 50, topP: 0.9 });
  const forward = Array.from({ length: 40 }, (_, i) => sampleToken(logits, p, i).token);
  const backward = Array.from({ length: 40 }, (_, i) => sampleToken(logits, p, 39 - i).token)
    .reverse();
  assert.deepEqual(forward, backward);
  const other = Array.from(
    { length: 40 },
    (_, i) => sampleToken(logits, { ...p, seed: 99 }, i).token,
  );
  assert.notDeepEqual(forward, other);
});

Deno.test("temperature sampling follows the softmax distribution", () => {
  const logits = logitsOf([0.5, 0.3, 0.2]);
  const counts = [0, 0, 0];
  const n = 20000;
  for (let i = 0; i < n; i++) counts[sampleToken(logits, params({ seed: 5 }), i).token]++;
  assert.ok(Math.abs(counts[0] / n - 0.5) < 0.015, `${counts}`);
  assert.ok(Math.abs(counts[1] / n - 0.3) < 0.015, `${counts}`);
  assert.ok(Math.abs(counts[2] / n - 0.2) < 0.015, `${counts}`);
  // A low temperature sharpens the distribution towards the argmax.
  let top = 0;
  for (let i = 0; i < 2000; i++) {
    if (sampleToken(logits, params({ seed: 5, temperature: 0.1 }), i).token === 0) top++;
  }
  assert.ok(top > 1950, `${top}`);
});

Deno.test("top-k keeps only the k most likely tokens", () => {
  fc.assert(
    fc.property(
      fc.array(fc.float({ min: -8, max: 8, noNaN: true }), { minLength: 2, maxLength: 40 }),
      fc.integer({ min: 1, max: 5 }),
      fc.nat(),
      (xs, k, seed) => {
        const logits = Float32Array.from(xs);
        const ranked = [...logits.keys()].sort((a, b) => logits[b] - logits[a] || a - b);
        const allowed = new Set(ranked.slice(0, k));
        for (let i = 0; i < 10; i++) {
          const t = sampleToken(logits, params({ topK: k, seed }), i).token;
          assert.ok(allowed.has(t), `token ${t} outside the top ${k}`);
        }
      },
    ),
    { numRuns: 100 },
  );
});

Deno.test("top-p keeps the smallest prefix reaching the mass", () => {
  const logits = logitsOf([0.05, 0.5, 0.15, 0.3]);
  const seen = (topP: number, topK = 0) => {
    const s = new Set<number>();
    for (let i = 0; i < 500; i++) {
      s.add(sampleToken(logits, params({ topP, topK, seed: 11 }), i).token);
    }
    return [...s].sort();
  };
  assert.deepEqual(seen(0.4), [1]);
  assert.deepEqual(seen(0.7), [1, 3]);
  assert.deepEqual(seen(0.9), [1, 2, 3]);
  assert.deepEqual(seen(1), [0, 1, 2, 3]);
  // top-k first, then top-p over the renormalised kept mass: 0.5 / 0.8 < 0.7.
  assert.deepEqual(seen(0.7, 2), [1, 3]);
  assert.deepEqual(seen(0.6, 2), [1]);
});

Deno.test("logprobs are the log-softmax of the raw logits with the top alternatives", () => {
  const logits = Float32Array.from([1, 3, 2, 3]);
  const r = sampleToken(logits, params({ temperature: 0, logprobs: 3 }), 0);
  assert.equal(r.token, 1);
  const z = Math.log([1, 3, 2, 3].reduce((a, x) => a + Math.exp(x), 0));
  assert.ok(Math.abs(r.logprob!.logprob - (3 - z)) < 1e-9);
  assert.deepEqual(r.logprob!.top.map((t) => t.token), [1, 3, 2]);
  for (const t of r.logprob!.top) assert.ok(Math.abs(t.logprob - (logits[t.token] - z)) < 1e-9);
  // Temperature does not change the reported logprobs.
  const hot = sampleToken(logits, params({ temperature: 2, logprobs: 0, seed: 1 }), 0);
  assert.deepEqual(hot.logprob!.top, []);
  assert.ok(Math.abs(hot.logprob!.logprob - (logits[hot.token] - z)) < 1e-9);
  assert.equal(sampleToken(logits, params({ logprobs: -1 }), 0).logprob, undefined);
  const all = tokenLogprob(logits, 0, 4);
  assert.ok(Math.abs(all.top.reduce((a, t) => a + Math.exp(t.logprob), 0) - 1) < 1e-9);
});

Deno.test("sampling never picks a token of zero probability", () => {
  const logits = Float32Array.from([-Infinity, 0, -Infinity, 0]);
  for (let i = 0; i < 200; i++) {
    const t = sampleToken(logits, params({ seed: 2, topP: 0.99 }), i).token;
    assert.ok(t === 1 || t === 3);
  }
});

/** The documented algorithm, spelled out with full sorts. */
function bruteForce(logits: Float32Array, p: SamplingParams, index: number): number {
  let ranked = [...logits.keys()].sort((a, b) =>
    logits[b] > logits[a] ? 1 : logits[b] < logits[a] ? -1 : a - b
  );
  if (p.topK > 0) ranked = ranked.slice(0, p.topK);
  const max = Math.max(...ranked.map((t) => logits[t]));
  const probs = new Map(ranked.map((t) => [t, Math.exp((logits[t] - max) / p.temperature)]));
  const total = [...probs.values()].reduce((a, b) => a + b, 0);
  for (const [t, w] of probs) probs.set(t, w / total);
  const mass = ranked.reduce((a, t) => a + probs.get(t)!, 0);
  let cum = 0;
  let cut = ranked.length;
  for (let j = 0; j < ranked.length; j++) {
    cum += probs.get(ranked[j])!;
    if (cum >= p.topP * mass) {
      cut = j + 1;
      break;
    }
  }
  if (p.topP < 1) ranked = ranked.slice(0, cut);
  const kept = ranked.sort((a, b) => a - b);
  const keptMass = kept.reduce((a, t) => a + probs.get(t)!, 0);
  const target = uniform(p.seed, index) * keptMass;
  let c = 0;
  for (const t of kept) {
    c += probs.get(t)!;
    if (c > target) return t;
  }
  return kept[kept.length - 1];
}

Deno.test("sampling matches the documented algorithm on large vocabularies", () => {
  fc.assert(
    fc.property(
      fc.array(fc.float({ min: -10, max: 10, noNaN: true }), { minLength: 1, maxLength: 400 }),
      fc.constantFrom(0, 1, 5, 50),
      fc.constantFrom(1, 0.99, 0.9, 0.5, 0.1),
      fc.constantFrom(0.3, 1, 2),
      fc.nat(),
      fc.nat({ max: 1000 }),
      (xs, topK, topP, temperature, seed, index) => {
        const logits = Float32Array.from(xs);
        const p = params({ topK, topP, temperature, seed });
        assert.equal(sampleToken(logits, p, index).token, bruteForce(logits, p, index));
      },
    ),
    { numRuns: 300 },
  );
});

/** Shuffle a copy of `xs` with a seeded generator. */
function shuffled<T>(xs: readonly T[], seed: number): T[] {
  const out = [...xs];
  let s = seed >>> 0 || 1;
  for (let i = out.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

Deno.test("top-k sampling needs only the k kept (id, logit) pairs, in any order", () => {
  // Integer logits make ties at the k-th place common; NaN ranks as minus infinity.
  const logit = fc.oneof(
    { weight: 8, arbitrary: fc.integer({ min: -4, max: 4 }) },
    { weight: 1, arbitrary: fc.constantFrom(NaN, -Infinity, -0) },
  );
  fc.assert(
    fc.property(
      fc.array(logit, { minLength: 2, maxLength: 60 }),
      fc.integer({ min: 1, max: 59 }),
      fc.constantFrom(1, 0.9, 0.5),
      fc.nat(),
      fc.nat({ max: 1000 }),
      (xs, k, topP, seed, index) => {
        fc.pre(k < xs.length);
        const logits = Float32Array.from(xs);
        const p = params({ topK: k, topP, seed, temperature: 0.7 });
        const rankOf = (t: number) => (logits[t] === logits[t] ? logits[t] : -Infinity);
        const top = [...logits.keys()]
          .sort((a, b) => rankOf(b) - rankOf(a) || a - b)
          .slice(0, k);
        const pairs = shuffled(top, seed);
        const fromPairs = sampleTopK(pairs, pairs.map((t) => logits[t]), p, index);
        assert.equal(fromPairs, sampleToken(logits, p, index).token);
        assert.ok(top.includes(fromPairs) || fromPairs === 0);
      },
    ),
    { numRuns: 300 },
  );
  assert.throws(() => sampleTopK([1, 2], [0.5], params({ topK: 2 }), 0), /one logit per id/);
});

Deno.test("top-k draws follow the distribution renormalised over the kept tokens", () => {
  const logits = logitsOf([0.1, 0.4, 0.2, 0.3]);
  const counts = new Map<number, number>();
  const n = 20000;
  for (let i = 0; i < n; i++) {
    const t = sampleToken(logits, params({ topK: 2, seed: 8 }), i).token;
    counts.set(t, (counts.get(t) ?? 0) + 1);
  }
  assert.deepEqual([...counts.keys()].sort(), [1, 3]);
  assert.ok(Math.abs(counts.get(1)! / n - 4 / 7) < 0.015, `${[...counts]}`);
});
