import assert from "node:assert/strict";
import { batchShape } from "../../../kernels/sim/plugin.ts";
import type { Batch, BatchSequence } from "../../../core/types.ts";

const seq = (id: string, startPos: number, prefixed: boolean): BatchSequence => ({
  id,
  tokens: [5],
  startPos,
  blockTable: [],
  sample: true,
  sampling: {
    temperature: 0,
    topK: 0,
    topP: 1,
    seed: 0,
    maxTokens: 9,
    stopTokenIds: [],
    stop: [],
    ignoreEos: true,
    logprobs: -1,
  },
  outputIndex: 0,
  ...(prefixed ? { prefixed: true } : {}),
});

Deno.test("relay: decodes after a shared prompt read it once per step, not once each", () => {
  const shared = Array.from({ length: 2048 }, () => 7);
  const seqs = Array.from({ length: 32 }, (_, i) => seq(`r${i}`, 2048 + 100 + i, true));
  const relay: Batch = {
    step: 1,
    sequences: seqs,
    numTokens: 32,
    numDecodes: 32,
    relay: { id: "p", tokens: shared },
  };
  const plain: Batch = {
    step: 1,
    sequences: seqs.map((s) => ({ ...s, prefixed: undefined })),
    numTokens: 32,
    numDecodes: 32,
  };
  const own = seqs.reduce((a, s) => a + s.startPos - 2048, 0);
  assert.equal(batchShape(relay).decodeContext, own + 2048);
  assert.equal(batchShape(plain).decodeContext, own + 32 * 2048);
});
