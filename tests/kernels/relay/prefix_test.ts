import assert from "node:assert/strict";
import fc from "fast-check";
import { extendsPrompt, longestSharedPrefix, sharedPrompt } from "../../../kernels/relay/prefix.ts";

Deno.test("relay prefix: the largest group's longest common prefix", () => {
  const sys = [1, 10, 11, 12, 13, 14];
  const prompts = [
    [...sys, 20, 21],
    [...sys, 30],
    [...sys, 40, 41, 42],
    [1, 10, 99, 98, 97, 96, 95], // shares only two tokens
    [5, 6, 7, 8, 9, 10, 11],
  ];
  const found = longestSharedPrefix(prompts, 3, 4)!;
  assert.deepEqual(found.tokens, sys);
  assert.equal(longestSharedPrefix(prompts, 4, 4), undefined, "too few sharers");
  assert.equal(longestSharedPrefix(prompts, 3, 7), undefined, "prefix too short");
});

Deno.test("relay prefix: every sharer keeps a token of its own", () => {
  const a = [1, 2, 3, 4, 5];
  const found = longestSharedPrefix([a, [...a], [...a, 6]], 3, 2)!;
  assert.deepEqual(found.tokens, [1, 2, 3, 4]);
  for (const p of [a, [...a, 6]]) assert.ok(extendsPrompt(p, found.tokens));
});

Deno.test("relay prefix: the result is a prefix of at least minSharers prompts", () => {
  fc.assert(
    fc.property(
      fc.array(fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 0, maxLength: 12 }), {
        maxLength: 12,
      }),
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 1, max: 5 }),
      (prompts, minSharers, minPrefix) => {
        const found = longestSharedPrefix(prompts, minSharers, minPrefix);
        if (!found) return;
        assert.ok(found.tokens.length >= minPrefix);
        const sharers = prompts.filter((p) => extendsPrompt(p, found.tokens)).length;
        assert.ok(sharers >= minSharers, `${sharers} sharers`);
      },
    ),
    { numRuns: 300, seed: 1 },
  );
});

Deno.test("relay prefix: ids follow the tokens", () => {
  assert.equal(sharedPrompt([1, 2, 3]).id, sharedPrompt([1, 2, 3]).id);
  assert.notEqual(sharedPrompt([1, 2, 3]).id, sharedPrompt([1, 2, 4]).id);
  assert.equal(extendsPrompt([1, 2], [1, 2]), false);
  assert.equal(extendsPrompt([1, 3, 4], [1, 2]), false);
  assert.throws(() => longestSharedPrefix([], 1, 0), RangeError);
});
