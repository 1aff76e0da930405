import assert from "node:assert/strict";
import { presetModel } from "../../../core/model/load.ts";
import { referenceExecutor } from "../../../kernels/reference/plugin.ts";
import { type WebGpuExecutor, webgpuExecutor } from "../../../kernels/webgpu/executor.ts";
import {
  byOutput,
  compareLogits,
  context,
  type ContextShape,
  drive,
  HAS_GPU,
  type ScriptedRequest,
} from "./harness.ts";

const SHAPE: ContextShape = {
  numBlocks: 128,
  blockSize: 4,
  maxBatchTokens: 48,
  maxBatchSeqs: 8,
  maxModelLen: 256,
};

// A shared prompt longer than one step's token budget, so that filling it takes chunks.
const PREFIX = Array.from({ length: 70 }, (_, i) => 1 + ((i * 13) % 200));
const OWN = [[50, 51, 52], [60, 61, 62, 63, 64, 65], [7], [80, 81], [90, 91, 92, 93, 94]];

Deno.test({
  name: "webgpu relay: relay and inline attention over a shared prompt give the reference's tokens",
  ignore: !HAS_GPU,
  async fn() {
    const ctx = context(presetModel("tiny-gqa"), SHAPE);
    const ref = await referenceExecutor.create({ keepLogits: true }, ctx);
    const make = (relay: string) =>
      webgpuExecutor.create(
        webgpuExecutor.options.parse({ keepLogits: true, weights: "f32", relay }),
        ctx,
      );
    const relayOn = await make("always");
    const inline = await make("never");
    const gated = await make("auto"); // 5 sharers, 70-token prompt: below the default gate
    try {
      const prefixed: ScriptedRequest[] = OWN.map((p, i) => ({
        prompt: p,
        maxTokens: 6,
        arrival: i % 3,
        prefixed: true,
      }));
      const whole: ScriptedRequest[] = OWN.map((p) => ({
        prompt: [...PREFIX, ...p],
        maxTokens: 6,
        arrival: 0,
      }));
      const relay = { id: "system", tokens: PREFIX };
      const got = await drive([relayOn, inline, gated], prefixed, SHAPE, { chunk: 16, relay });
      const want = byOutput(await drive([ref], whole, SHAPE, { chunk: 16 }), 0);
      assert.equal(want.size, OWN.length * 6);
      for (let e = 0; e < 3; e++) {
        const outs = byOutput(got, e);
        assert.equal(outs.size, want.size);
        for (const [key, w] of want) {
          const g = outs.get(key)!;
          let scale = 1;
          for (const v of w.logits!) scale = Math.max(scale, Math.abs(v));
          const { maxDiff, gap } = compareLogits(w.logits!, g.logits!);
          assert.ok(maxDiff <= 1e-3 * scale, `executor ${e}, ${key}: logits differ by ${maxDiff}`);
          if (gap > 2e-3 * scale) assert.equal(g.token, w.token, `executor ${e}, ${key}`);
        }
      }
    } finally {
      for (const ex of [relayOn, inline, gated]) await ex.close?.();
    }
  },
});

Deno.test({
  name: "webgpu relay: a new shared prompt replaces the old one",
  ignore: !HAS_GPU,
  async fn() {
    const ctx = context(presetModel("tiny"), SHAPE);
    const ref = await referenceExecutor.create({ keepLogits: true }, ctx);
    const gpu = await webgpuExecutor.create(
      webgpuExecutor.options.parse({ keepLogits: true, weights: "f32", relay: "always" }),
      ctx,
    );
    try {
      for (
        const [id, prefix] of [["a", PREFIX.slice(0, 9)], ["b", PREFIX.slice(20, 61)]] as const
      ) {
        const own: ScriptedRequest[] = OWN.slice(0, 3).map((p) => ({
          prompt: p,
          maxTokens: 3,
          arrival: 0,
          prefixed: true,
        }));
        const whole = OWN.slice(0, 3).map((p) => ({
          prompt: [...prefix, ...p],
          maxTokens: 3,
          arrival: 0,
        }));
        const got = byOutput(
          await drive([gpu], own, SHAPE, { chunk: 48, relay: { id, tokens: prefix } }),
          0,
        );
        const want = byOutput(await drive([ref], whole, SHAPE, { chunk: 48 }), 0);
        for (const [key, w] of want) {
          assert.ok(compareLogits(w.logits!, got.get(key)!.logits!).maxDiff < 1e-3, key);
        }
      }
    } finally {
      await gpu.close?.();
    }
  },
});

Deno.test({
  name: "webgpu relay: decoding ahead after a shared prompt gives the same tokens",
  ignore: !HAS_GPU,
  async fn() {
    const ctx = context(presetModel("tiny-gqa"), SHAPE);
    const make = (decodeAhead: number) =>
      webgpuExecutor.create(
        webgpuExecutor.options.parse({ weights: "f32", relay: "always", decodeAhead }),
        ctx,
      ) as Promise<WebGpuExecutor>;
    const ahead = await make(5);
    const plain = await make(0);
    try {
      const prefixed: ScriptedRequest[] = OWN.map((p, i) => ({
        prompt: p,
        maxTokens: 12,
        arrival: i % 3,
        prefixed: true,
      }));
      const relay = { id: "system", tokens: PREFIX };
      const pairs = await drive([plain, ahead], prefixed, SHAPE, { chunk: 16, relay });
      let rows = 0;
      for (const p of pairs) {
        for (const row of p.rows) {
          assert.equal(p.outputs[1].tokens[row], p.outputs[0].tokens[row]);
          rows++;
        }
      }
      assert.equal(rows, OWN.length * 12);
      assert.ok(ahead.stats().aheadTokens > 0);
      assert.ok(ahead.stats().readbacks < plain.stats().readbacks);
    } finally {
      await ahead.close?.();
      await plain.close?.();
    }
  },
});
