import assert from "node:assert/strict";
import { bestDraftLength, expectedTokens } from "../../../policies/smartspec/goodput.ts";
import { smartspec, type SmartSpecState } from "../../../policies/smartspec/mod.ts";
import { type SimRequest, simulate } from "../../../core/simulation.ts";
import { builtinRegistry } from "../../../plugins/builtins.ts";
import { definePlugin } from "../../../plugins/define.ts";
import { modelProfile } from "../../../kernels/sim/models.ts";
import { simModel } from "../../../kernels/sim/sim_model.ts";
import { GpuCostModel } from "../../../kernels/sim/cost_model.ts";
import { gpuProfile } from "../../../kernels/sim/hardware.ts";
import { generateWorkload } from "../../../bench/workloads/generate.ts";
import { UsageError } from "../../../core/errors.ts";

const cost = new GpuCostModel({
  hardware: gpuProfile("a100-80g"),
  model: modelProfile("llama-2-7b"),
});

Deno.test("goodput: expected tokens per request for k drafts accepted with probability alpha", () => {
  assert.equal(expectedTokens(0, 0.7), 1);
  assert.equal(expectedTokens(3, 1), 4);
  assert.equal(expectedTokens(2, 0.5), 1.75);
  assert.equal(expectedTokens(5, 0), 1);
});

Deno.test("goodput: the draft length follows acceptance, free memory and the margin", () => {
  const b = { decodes: 8, context: 8 * 1000, free: 1e6 };
  const pick = (alpha: number, extra: Partial<typeof b> = {}, bias = 1.1, draft = 0.002) =>
    bestDraftLength({ ...b, ...extra }, alpha, 8, cost, (k) => k * draft, bias);
  assert.equal(pick(0), 0, "drafts that are never accepted only cost");
  const low = pick(0.4), high = pick(0.9);
  assert.ok(high > low && low >= 1, `alpha 0.4 -> ${low}, 0.9 -> ${high}`);
  assert.equal(pick(0.9, { free: 0 }), 0, "no free KV for the drafts");
  assert.equal(pick(0.9, {}, 100), 0, "speculation must beat plain decoding by the margin");
  assert.ok(pick(0.9, {}, 1.1, 0.05) < high, "a costlier draft model drafts less");
});

/** Run a workload with a speculation plugin; returns the result and the smartspec state. */
async function run(requests: SimRequest[], speculation: { name: string; options?: object }) {
  const registry = builtinRegistry();
  let state: SmartSpecState | undefined;
  const alphas: number[] = [];
  registry.register(definePlugin({
    ...smartspec,
    name: "smartspec-probe",
    create: (o, c) => {
      const impl = smartspec.create(o as never, c) as ReturnType<typeof smartspec.create> & {
        state: SmartSpecState;
      };
      state = impl.state;
      return impl;
    },
  }));
  const result = await simulate({
    engine: {
      model: simModel(modelProfile("llama-2-7b")),
      registry,
      numBlocks: 8000,
      plugins: {
        executor: { name: "sim", options: { gpu: "a100-80g" } },
        speculation: speculation as { name: string },
      },
    },
    requests,
    onStep: () => state && alphas.push(state.alpha),
  });
  return { result, state, alphas };
}

const light = generateWorkload({
  workload: "sharegpt",
  requests: 40,
  seed: 3,
  arrival: { kind: "poisson", rate: 0.5 },
  maxModelLen: 4096,
});

Deno.test("sim-draft: drafts are accepted as an i.i.d. model says, outputs are unchanged", async () => {
  const plain = await run(light, { name: "none" });
  const { result } = await run(light, { name: "sim-draft", options: { k: 4, acceptance: 0.7 } });
  const want = new Map(light.map((q) => [q.id, q.outputLength]));
  for (const r of result.records) assert.equal(r.outputTokens, want.get(r.id));
  // Accepted of proposed: (a + a^2 + a^3 + a^4) / 4 for a full draft of 4.
  const a = 0.7, expect = (a + a ** 2 + a ** 3 + a ** 4) / 4;
  const e = result.engine;
  assert.ok(e.draftTokens > 10_000, `${e.draftTokens} draft tokens`);
  assert.ok(Math.abs(e.acceptedDraftTokens / e.draftTokens - expect) < 0.03);
  assert.ok(
    result.summary.e2el_ms.mean < 0.7 * plain.result.summary.e2el_ms.mean,
    "a light load decodes faster with drafts",
  );
});

Deno.test("smartspec: learns the acceptance rate and turns speculation off when drafts fail", async () => {
  for (const acceptance of [0.8, 0.3]) {
    const { alphas } = await run(light, {
      name: "smartspec-probe",
      options: { acceptance, interval: 5 },
    });
    // The estimate is a short moving average: compare its mean over the second half.
    const late = alphas.slice(alphas.length >> 1);
    const mean = late.reduce((x, y) => x + y, 0) / late.length;
    assert.ok(Math.abs(mean - acceptance) < 0.06, `alpha ${mean} for ${acceptance}`);
  }
  for (const probe of [false, true]) {
    const { state, result } = await run(light, {
      name: "smartspec-probe",
      options: { acceptance: 0, interval: 5, probe },
    });
    assert.equal(state!.k, 0, "nothing is accepted: plain decoding");
    // Without probes the estimate stops where speculation stopped; probes bring it to 0.
    if (probe) assert.ok(state!.alpha < 0.05, `alpha ${state!.alpha}`);
    const share = result.engine.draftTokens / result.summary.total_output_tokens;
    // Without probes it stops after the first few choices; with them it drafts one token
    // per request every 5 steps.
    assert.ok(probe ? share < 0.3 : share < 0.05, `${result.engine.draftTokens} drafted`);
  }
});

Deno.test("smartspec: refused without a step-time model", async () => {
  await assert.rejects(
    async () => {
      const { Engine } = await import("../../../core/engine.ts");
      const { presetModel } = await import("../../../core/model/load.ts");
      await Engine.create({
        model: presetModel("tiny"),
        plugins: { speculation: { name: "smartspec" } },
      });
    },
    (e) => e instanceof UsageError && /needs a step-time model/.test(e.message),
  );
});
