import assert from "node:assert/strict";
import { generateLearnable } from "../../../bench/workloads/learnable.ts";
import { DEFAULT_FEATURES, Featurizer } from "../../../policies/ltr/features.ts";
import {
  ListMleTrainer,
  rankLabel,
  sparseDot,
  trainRanker,
} from "../../../policies/ltr/listmle.ts";
import { kendallTau } from "../../../policies/ltr/kendall.ts";
import { LinearRanker } from "../../../policies/ltr/ranker.ts";
import { UsageError } from "../../../core/errors.ts";

const reqs = generateLearnable({ requests: 3000, seed: 5 });
const f = new Featurizer(DEFAULT_FEATURES);
const data = reqs.map((r) => ({ x: f.vector(r.promptTokens), length: r.outputLength }));

Deno.test("features: dot with weights equals the sparse vector's dot; vectors are reproducible", () => {
  const w = new Float32Array(DEFAULT_FEATURES.dim).map((_, i) => Math.sin(i));
  for (const r of reqs.slice(0, 20)) {
    const x = f.vector(r.promptTokens);
    assert.equal(new Set(x.index).size, x.index.length);
    assert.ok(Math.abs(f.dot(r.promptTokens, w) - sparseDot(x, w)) < 1e-4);
    assert.deepEqual(f.vector(r.promptTokens), x);
  }
});

Deno.test("rankLabel: shorter outputs get larger labels, bucketed and capped", () => {
  assert.equal(rankLabel(0, 10, 8192), 819);
  assert.equal(rankLabel(9, 10, 8192), 819);
  assert.equal(rankLabel(10, 10, 8192), 818);
  assert.equal(rankLabel(8192, 10, 8192), 0);
  assert.equal(rankLabel(50000, 10, 8192), 0);
});

Deno.test("ListMLE: the loss falls and held-out Kendall tau on the learnable workload passes 0.5", () => {
  const train = data.slice(0, 2500), test = data.slice(2500);
  const ranker = new LinearRanker(DEFAULT_FEATURES);
  const trainer = new ListMleTrainer(ranker, { seed: 1 });
  const first = trainer.epoch(train);
  let last = first;
  for (let e = 0; e < 5; e++) last = trainer.epoch(train);
  assert.ok(last < first, `loss ${first} -> ${last}`);
  const scores = test.map((d) => sparseDot(d.x, ranker.weights));
  // Higher score = shorter: correlate with negated length.
  const tau = kendallTau(scores, test.map((d) => -d.length));
  assert.ok(tau >= 0.5, `held-out tau ${tau}`);
  // An untrained ranker ranks nothing.
  const zero = test.map((d) => sparseDot(d.x, new Float32Array(DEFAULT_FEATURES.dim)));
  assert.ok(Number.isNaN(kendallTau(zero, test.map((d) => d.length))));
});

Deno.test("ranker file: round trip keeps scores; malformed files are usage errors", () => {
  const ranker = trainRanker(data.slice(0, 500), DEFAULT_FEATURES, { epochs: 2 });
  const back = LinearRanker.fromJSON(JSON.parse(JSON.stringify(ranker.toJSON())));
  for (const r of reqs.slice(0, 50)) {
    assert.ok(Math.abs(back.score(r.promptTokens) - ranker.score(r.promptTokens)) < 1e-4);
  }
  for (
    const bad of [null, {}, { format: "baton-ltr-ranker", version: 2 }, {
      ...ranker.toJSON(),
      index: [1e9],
      weight: [1],
    }]
  ) {
    assert.throws(() => LinearRanker.fromJSON(bad), UsageError);
  }
});
