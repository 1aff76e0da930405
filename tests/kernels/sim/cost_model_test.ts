import assert from "node:assert/strict";
import { GpuCostModel, LinearCostModel } from "../../../kernels/sim/cost_model.ts";
import { gpuProfile } from "../../../kernels/sim/hardware.ts";
import { modelProfile } from "../../../kernels/sim/models.ts";
import { UsageError } from "../../../core/errors.ts";

// Sarathi-Serve artifact, Yi-34B, tensor parallel 2, A100-80GB PCIe (milliseconds).
const DECODE: [number, number][] = [[1, 46.8], [4, 48.8], [8, 69.7], [32, 87.9], [64, 127.8], [
  128,
  189.3,
]];
const PREFILL: [number, number][] = [[128, 48], [512, 106], [1024, 214], [2048, 366], [
  4096,
  758,
], [8192, 1863]];
// Context per decode assumed for the table (docs/SIMULATOR.md, "Calibration").
const CTX = 8192;

const yi = new GpuCostModel({
  hardware: gpuProfile("a100-pcie-80g"),
  model: modelProfile("yi-34b"),
  tp: 2,
});

function within(predicted: number, measured: number, what: string): void {
  const err = Math.abs(predicted / measured - 1);
  assert(err < 0.15, `${what}: predicted ${predicted.toFixed(1)} ms, measured ${measured} ms`);
}

Deno.test("cost model: decode-only steps within 15% of the Yi-34B TP2 table", () => {
  for (const [b, ms] of DECODE) {
    const t = yi.stepTime({
      prefillTokens: 0,
      prefillContext: 0,
      decodes: b,
      decodeContext: b * CTX,
    });
    within(t * 1000, ms, `decode batch ${b}`);
  }
});

Deno.test("cost model: prefill-only steps within 15% of the Yi-34B TP2 table", () => {
  for (const [n, ms] of PREFILL) {
    const t = yi.stepTime({ prefillTokens: n, prefillContext: 0, decodes: 0, decodeContext: 0 });
    within(t * 1000, ms, `prefill ${n}`);
  }
});

Deno.test("cost model: a 1021-token prefill with 3 piggy-backed decodes", () => {
  const t = yi.stepTime({
    prefillTokens: 1021,
    prefillContext: 0,
    decodes: 3,
    decodeContext: 3 * CTX,
    prefillSeqs: 1,
  });
  within(t * 1000, 217.6, "hybrid");
  // A piggy-backed decode is far cheaper than a decode-only step.
  const alone = yi.stepTime({
    prefillTokens: 0,
    prefillContext: 0,
    decodes: 3,
    decodeContext: 3 * CTX,
  });
  const pre = yi.stepTime({ prefillTokens: 1021, prefillContext: 0, decodes: 0, decodeContext: 0 });
  assert(t - pre < alone / 10);
});

Deno.test("cost model: monotone in tokens and context; faster GPUs are faster", () => {
  const m = modelProfile("llama-3-8b");
  const a100 = new GpuCostModel({ hardware: gpuProfile("a100-80g"), model: m });
  const h100 = new GpuCostModel({ hardware: gpuProfile("h100"), model: m });
  const a40 = new GpuCostModel({ hardware: gpuProfile("a40"), model: m });
  let prev = 0;
  for (const n of [1, 64, 256, 1024, 4096]) {
    const t = a100.stepTime({ prefillTokens: n, prefillContext: 0, decodes: 0, decodeContext: 0 });
    assert(t >= prev);
    prev = t;
  }
  const shape = { prefillTokens: 512, prefillContext: 1024, decodes: 32, decodeContext: 32 * 1500 };
  assert(h100.stepTime(shape) < a100.stepTime(shape));
  assert(a100.stepTime(shape) < a40.stepTime(shape));
  const more = { ...shape, decodeContext: shape.decodeContext * 2 };
  assert(a100.stepTime(more) > a100.stepTime(shape));
  assert.equal(
    a100.stepTime({ prefillTokens: 0, prefillContext: 0, decodes: 0, decodeContext: 0 }),
    0,
  );
});

Deno.test("cost model: a fitted linear profile is its formula", () => {
  const m = new LinearCostModel({
    name: "cpu",
    model: "x",
    base: 0.001,
    perToken: 0.0001,
    perSeq: 0.00001,
    perPair: 1e-8,
    perDecodeContext: 1e-7,
  });
  const t = m.stepTime({ prefillTokens: 10, prefillContext: 0, decodes: 2, decodeContext: 100 });
  // 3 seqs, 12 tokens, 10 * 5 = 50 pairs, 100 context.
  assert(Math.abs(t - (0.001 + 12e-4 + 3e-5 + 50e-8 + 100e-7)) < 1e-12);
});

Deno.test("profiles: unknown GPU or model is a UsageError naming the allowed ones", () => {
  assert.throws(
    () => gpuProfile("tpu"),
    (e) => e instanceof UsageError && /a100-80g/.test(e.message),
  );
  assert.throws(
    () => modelProfile("gpt-5"),
    (e) => e instanceof UsageError && /mistral-7b/.test(e.message),
  );
});
