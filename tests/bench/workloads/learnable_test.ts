import assert from "node:assert/strict";
import { generateLearnable } from "../../../bench/workloads/learnable.ts";
import { kendallTau } from "../../../policies/ltr/kendall.ts";
import { BYTE_VOCAB_SIZE } from "../../../core/model/byte_tokenizer.ts";

Deno.test("learnable: seeded, in range, byte-vocabulary prompts, gamma arrivals when asked", () => {
  const a = generateLearnable({
    requests: 500,
    seed: 3,
    arrival: { kind: "gamma", rate: 10, cv: 1 },
  });
  const b = generateLearnable({
    requests: 500,
    seed: 3,
    arrival: { kind: "gamma", rate: 10, cv: 1 },
  });
  assert.deepEqual(a, b);
  for (const r of a) {
    assert.ok(r.outputLength >= 1 && r.outputLength <= 4096);
    assert.equal(r.promptLength, r.promptTokens.length);
    assert.ok(r.promptTokens.every((t) => Number.isInteger(t) && t >= 0 && t < BYTE_VOCAB_SIZE));
    assert.equal(
      new TextDecoder().decode(new Uint8Array(r.promptTokens.slice(1).map((t) => t - 3))),
      r.text,
    );
  }
  for (let i = 1; i < a.length; i++) assert.ok(a[i].arrivalTime >= a[i - 1].arrivalTime);
  // Mean gap 0.1 s at 10 requests/s.
  assert.ok(Math.abs(a[a.length - 1].arrivalTime / a.length - 0.1) < 0.03);
});

Deno.test("learnable: the output length is not given away by the prompt length", () => {
  const reqs = generateLearnable({ requests: 2000, seed: 4 });
  const tau = kendallTau(reqs.map((r) => r.promptLength), reqs.map((r) => r.outputLength));
  assert.ok(Math.abs(tau) < 0.3, `prompt-length tau ${tau}`);
  // Families differ: one-word answers are short, essays long.
  const mean = (f: string) => {
    const x = reqs.filter((r) => r.family === f && r.outputLength < 4096);
    return x.reduce((s, r) => s + r.outputLength, 0) / x.length;
  };
  assert.ok(mean("one-word") < 10 && mean("essay") > 500);
});
