import assert from "node:assert/strict";
import { presetModel } from "../../../core/model/load.ts";
import { referenceExecutor } from "../../../kernels/reference/plugin.ts";
import { type WebGpuExecutor, webgpuExecutor } from "../../../kernels/webgpu/executor.ts";
import type { Executor } from "../../../core/slots.ts";
import {
  compareLogits,
  context,
  type ContextShape,
  drive,
  greedy,
  HAS_GPU,
  type ScriptedRequest,
  type StepPair,
} from "./harness.ts";

const SHAPE: ContextShape = {
  numBlocks: 64,
  blockSize: 4,
  maxBatchTokens: 64,
  maxBatchSeqs: 8,
  maxModelLen: 256,
};

/** Staggered arrivals, a prompt longer than a prefill chunk, decodes mixed with prefills. */
const REQUESTS: ScriptedRequest[] = [
  { prompt: [1, 5, 9, 13, 40, 41, 42, 43, 44, 45, 46, 47], maxTokens: 6, arrival: 0 },
  { prompt: [1, 100, 101, 102, 103], maxTokens: 8, arrival: 1 },
  { prompt: Array.from({ length: 70 }, (_, i) => 3 + (i * 7) % 250), maxTokens: 4, arrival: 2 },
  { prompt: [1, 200], maxTokens: 5, arrival: 4 },
];

/** Logit tolerance, relative to the largest logit magnitude (at least 1). */
const TOL = 1e-3;

/**
 * Asserts both executors agree on every sampled row (logits within `tol` of the largest
 * magnitude); returns how many rows were compared.
 */
function assertAgree(pairs: StepPair[], tol = TOL): number {
  let rows = 0;
  for (const p of pairs) {
    for (const row of p.rows) {
      const ref = p.outputs[0].logits?.[row];
      const got = p.outputs[1].logits?.[row];
      assert.ok(ref && got, "both executors return logits");
      let scale = 1;
      for (const v of ref) scale = Math.max(scale, Math.abs(v));
      const { maxDiff, gap } = compareLogits(ref, got);
      assert.ok(maxDiff <= tol * scale, `logits differ by ${maxDiff} (scale ${scale})`);
      // Where the top two are closer than the tolerance, the logits comparison decides.
      if (gap > 2 * tol * scale) {
        assert.equal(p.outputs[1].tokens[row], p.outputs[0].tokens[row]);
      }
      rows++;
    }
  }
  return rows;
}

async function pair(name: string, gpuOptions: Record<string, unknown>): Promise<Executor[]> {
  const ctx = context(presetModel(name), SHAPE);
  const ref = await referenceExecutor.create({ keepLogits: true }, ctx);
  const gpu = await webgpuExecutor.create(
    webgpuExecutor.options.parse({ keepLogits: true, weights: "f32", ...gpuOptions }),
    ctx,
  );
  return [ref, gpu];
}

for (const name of ["tiny", "tiny-gqa", "small"]) {
  Deno.test({
    name: `webgpu executor: ${name} matches the reference under continuous batching`,
    ignore: !HAS_GPU,
    async fn() {
      const execs = await pair(name, {});
      try {
        const rows = assertAgree(await drive(execs, REQUESTS, SHAPE, { chunk: 32, seed: 3 }));
        assert.equal(rows, REQUESTS.reduce((a, r) => a + r.maxTokens, 0));
      } finally {
        await execs[1].close?.();
      }
    },
  });
}

Deno.test({
  name: "webgpu executor: workgroup-memory reductions (no subgroups) match the reference",
  ignore: !HAS_GPU,
  async fn() {
    const execs = await pair("tiny-gqa", { subgroups: false });
    try {
      assertAgree(await drive(execs, REQUESTS, SHAPE, { chunk: 16, seed: 6 }));
    } finally {
      await execs[1].close?.();
    }
  },
});

Deno.test({
  name: "webgpu executor: tiled matmul path (prefill-sized batches) matches the reference",
  ignore: !HAS_GPU,
  async fn() {
    const execs = await pair("tiny-gqa", { matvecMaxRows: 1 });
    try {
      assertAgree(await drive(execs, REQUESTS, SHAPE, { chunk: 48, seed: 5 }));
    } finally {
      await execs[1].close?.();
    }
  },
});

Deno.test({
  name: "webgpu executor: batches larger than one GPU pass run in several passes",
  ignore: !HAS_GPU,
  async fn() {
    const execs = await pair("tiny", { maxPassTokens: 5 });
    try {
      const pairs = await drive(execs, REQUESTS, SHAPE, { chunk: 32, seed: 4 });
      assert.equal(assertAgree(pairs), REQUESTS.reduce((a, r) => a + r.maxTokens, 0));
    } finally {
      await execs[1].close?.();
    }
  },
});

Deno.test({
  name: "webgpu executor: f16 weights stay within f16 rounding of the reference",
  ignore: !HAS_GPU,
  async fn() {
    const execs = await pair("tiny-gqa", { weights: "f16" });
    try {
      const pairs = await drive(execs, REQUESTS, SHAPE, { chunk: 32, seed: 9 });
      assertAgree(pairs, 2e-2);
      // Rounding the weights does change the logits a little: the f16 path is really taken.
      let moved = 0;
      for (const p of pairs) {
        for (const row of p.rows) {
          moved = Math.max(
            moved,
            compareLogits(p.outputs[0].logits![row]!, p.outputs[1].logits![row]!).maxDiff,
          );
        }
      }
      assert.ok(moved > 1e-6, `f16 logits equal f32 ones (${moved})`);
    } finally {
      await execs[1].close?.();
    }
  },
});

Deno.test({
  name: "webgpu executor: temperature sampling and logprobs draw the reference's tokens",
  ignore: !HAS_GPU,
  async fn() {
    const execs = await pair("tiny", { keepLogits: false });
    try {
      // Rows 1 and 3 select their top-k on the GPU; rows 0 and 2 read their logits back.
      const reqs: ScriptedRequest[] = REQUESTS.map((r, i) => ({
        ...r,
        maxTokens: r.maxTokens + 6,
        sampling: {
          temperature: i === 3 ? 1.5 : 0.9,
          topK: [0, 20, 0, 3][i],
          topP: [1, 1, 0.8, 0.9][i],
          seed: 11 + i,
        },
      }));
      reqs[0].sampling!.logprobs = 3;
      const pairs = await drive(execs, reqs, SHAPE, { chunk: 32 });
      let withLogprobs = 0;
      for (const p of pairs) {
        for (const row of p.rows) {
          assert.equal(p.outputs[1].tokens[row], p.outputs[0].tokens[row]);
          const lp = p.outputs[1].logprobs?.[row];
          if (lp) {
            withLogprobs++;
            assert.equal(lp.top.length, 3);
            assert.ok(Math.abs(lp.logprob - p.outputs[0].logprobs![row]!.logprob) < 1e-3);
          }
        }
        assert.equal(p.outputs[1].logits, undefined, "no logits unless keepLogits");
      }
      assert.equal(withLogprobs, reqs[0].maxTokens);
    } finally {
      await execs[1].close?.();
    }
  },
});

Deno.test({
  name: "webgpu executor: rejects a block table that cannot hold the tokens",
  ignore: !HAS_GPU,
  async fn() {
    const [, gpu] = await pair("tiny", {});
    try {
      const seq = {
        id: "a",
        tokens: [1, 2, 3, 4, 5, 6],
        startPos: 0,
        blockTable: [0],
        sample: true,
        sampling: greedy(4),
        outputIndex: 0,
      };
      await assert.rejects(async () => {
        await gpu.run({ step: 0, sequences: [seq], numTokens: 6, numDecodes: 0 });
      }, RangeError);
    } finally {
      await gpu.close?.();
    }
  },
});

Deno.test({
  name: "webgpu executor: decoding ahead gives the reference's tokens with fewer read-backs",
  ignore: !HAS_GPU,
  async fn() {
    const ctx = context(presetModel("tiny"), SHAPE);
    const make = (decodeAhead: number) =>
      webgpuExecutor.create(
        webgpuExecutor.options.parse({ weights: "f32", decodeAhead, decodeAheadMaxSeqs: 3 }),
        ctx,
      ) as Promise<WebGpuExecutor>;
    const execs = [
      await referenceExecutor.create({ keepLogits: true }, ctx),
      await make(6),
      await make(0),
    ];
    try {
      // Longer outputs, so that sequences cross several 4-token blocks while decoding
      // ahead; requests join and leave, so passes also mix prefills with decodes.
      const reqs = REQUESTS.map((r, i) => ({ ...r, maxTokens: 9 + 4 * i }));
      const pairs = await drive(execs, reqs, SHAPE, { chunk: 16, seed: 5 });
      let rows = 0;
      let compared = 0;
      for (const p of pairs) {
        for (const row of p.rows) {
          rows++;
          // A near tie of the reference's top two may go either way on another device.
          const ref = p.outputs[0].logits![row]!;
          const scale = ref.reduce((a, v) => Math.max(a, Math.abs(v)), 1);
          if (compareLogits(ref, ref).gap <= 2 * TOL * scale) continue;
          assert.equal(p.outputs[1].tokens[row], p.outputs[0].tokens[row]);
          assert.equal(p.outputs[2].tokens[row], p.outputs[0].tokens[row]);
          compared++;
        }
      }
      assert.equal(rows, reqs.reduce((a, r) => a + r.maxTokens, 0));
      assert.ok(compared > 0.8 * rows, `${compared} of ${rows} rows clear of near ties`);
      const ahead = (execs[1] as WebGpuExecutor).stats();
      const plain = (execs[2] as WebGpuExecutor).stats();
      assert.equal(plain.aheadTokens, 0);
      // How deep it goes depends on the measured cost of a pass (lavapipe: 35 of 60
      // tokens ahead, 12 read-backs against 25), so the bounds here are loose.
      assert.ok(ahead.aheadTokens > rows / 6, `${ahead.aheadTokens} of ${rows} tokens ahead`);
      assert.ok(
        ahead.readbacks < plain.readbacks,
        `${ahead.readbacks} read-backs against ${plain.readbacks}`,
      );
    } finally {
      await execs[1].close?.();
      await execs[2].close?.();
    }
  },
});
