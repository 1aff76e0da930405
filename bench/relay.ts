/**
 * `deno task bench relay`: RelayAttention against ordinary paged attention.
 *
 * 1. Attention time, one decode query per sequence over a shared prompt of S tokens plus
 *    U = 128 own tokens, for S in {512, 2048, 8192} and batch B in {1, 8, 32, 64}: the
 *    TypeScript path (`kernels/relay`) and the WebGPU kernels, each against the IO bound
 *    B (S + U) / (S + B U) (relay spec, 1(a)). The baseline stores the prompt once and
 *    reads it once per sequence (prefix caching, the paper's "PS" baseline).
 * 2. End-to-end decode throughput of the webgpu executor with a 2,048-token shared prompt
 *    and 32 concurrent requests, relay against inline (ordinary) attention.
 *
 * Flags: `--sizes 512,2048,8192 --batches 1,8,32,64 --own 128 --heads 8 --kv-heads 8
 * --head-dim 64 --paths ts,webgpu --model tiny --e2e-prompt 2048 --e2e-batch 32
 * --e2e-steps 16 --no-e2e --budget-s 20` (per-configuration time cap for the slow paths).
 *
 * @module
 */

import { GREEDY as GREEDY_ONCE } from "../core/sampling.ts";
import { parseArgs } from "node:util";
import {
  attendKeys,
  attendShared,
  contiguousKeys,
  type HeadShape,
  pagedKeys,
} from "../kernels/relay/attention.ts";
import { relayIoBound } from "../kernels/relay/gate.ts";
import { openGpu } from "../kernels/webgpu/device.ts";
import {
  type AttentionData,
  type AttentionProblem,
  GpuAttentionOp,
} from "../kernels/webgpu/attention_op.ts";
import { webgpuExecutor } from "../kernels/webgpu/executor.ts";
import { deviceSeconds } from "../kernels/webgpu/timing.ts";
import { presetModel } from "../core/model/load.ts";
import type { SamplingParams } from "../core/types.ts";
import type { RelayBatch, RelaySequence } from "../kernels/relay/types.ts";

function list(s: string): number[] {
  return s.split(",").map((x) => Number(x.trim())).filter((x) => Number.isFinite(x) && x > 0);
}

function randoms(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 0x100000000 * 2 - 1;
  }
  return out;
}

function data(p: AttentionProblem): AttentionData {
  const kvDim = p.nKvHeads * p.headDim;
  return {
    q: randoms(p.batch * p.nHeads * p.headDim, 1),
    sharedK: randoms(p.shared * kvDim, 2),
    sharedV: randoms(p.shared * kvDim, 3),
    ownK: randoms(p.batch * p.own * kvDim, 4),
    ownV: randoms(p.batch * p.own * kvDim, 5),
  };
}

/** Median seconds of `fn` over runs that fit `budget` seconds (at least one, at most 5). */
async function timeIt(fn: () => unknown, budget: number): Promise<number> {
  const times: number[] = [];
  await fn(); // warm-up (JIT, pipeline caches)
  const start = performance.now();
  while (times.length < 5) {
    const t = performance.now();
    await fn();
    times.push((performance.now() - t) / 1000);
    if ((performance.now() - start) / 1000 > budget / 2) break;
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

/** Both attention ways on the TypeScript path; returns seconds per op. */
async function tsPath(
  p: AttentionProblem,
  d: AttentionData,
  budget: number,
): Promise<{ paged: number; relay: number }> {
  const shape: HeadShape = { ...p, scale: 1 / Math.sqrt(p.headDim) };
  const kvDim = p.nKvHeads * p.headDim;
  const qDim = p.nHeads * p.headDim;
  // One pool: the prompt's blocks first, then each sequence's own blocks.
  const sharedBlocks = p.shared / p.blockSize;
  const ownBlocks = Math.ceil(p.own / p.blockSize);
  const rows = (sharedBlocks + p.batch * ownBlocks) * p.blockSize;
  const k = new Float32Array(rows * kvDim);
  const v = new Float32Array(rows * kvDim);
  k.set(d.sharedK);
  v.set(d.sharedV);
  const tables: number[][] = [];
  for (let b = 0; b < p.batch; b++) {
    const first = sharedBlocks + b * ownBlocks;
    k.set(d.ownK.subarray(b * p.own * kvDim, (b + 1) * p.own * kvDim), first * p.blockSize * kvDim);
    v.set(d.ownV.subarray(b * p.own * kvDim, (b + 1) * p.own * kvDim), first * p.blockSize * kvDim);
    const own = Array.from({ length: ownBlocks }, (_, i) => first + i);
    tables.push([...Array.from({ length: sharedBlocks }, (_, i) => i), ...own]);
  }
  const end = [p.shared + p.own];
  const paged = await timeIt(() => {
    for (let b = 0; b < p.batch; b++) {
      const q = d.q.subarray(b * qDim, (b + 1) * qDim);
      attendKeys(q, 1, pagedKeys(k, v, shape, p.blockSize, tables[b]), 0, end, shape);
    }
  }, budget);
  const sharedSrc = contiguousKeys(d.sharedK, d.sharedV, shape);
  const relay = await timeIt(() => {
    const sys = attendShared(d.q, p.batch, sharedSrc, p.shared, shape);
    for (let b = 0; b < p.batch; b++) {
      const q = d.q.subarray(b * qDim, (b + 1) * qDim);
      const seed = {
        out: sys.out.subarray(b * qDim, (b + 1) * qDim),
        lse: sys.lse.subarray(b * p.nHeads, (b + 1) * p.nHeads),
      };
      const src = pagedKeys(k, v, shape, p.blockSize, tables[b].slice(sharedBlocks), p.shared);
      attendKeys(q, 1, src, p.shared, end, shape, seed);
    }
  }, budget);
  return { paged, relay };
}

/** Both ways on the GPU: device seconds per op (see `deviceSeconds`). */
async function gpuPath(
  op: GpuAttentionOp,
  budget: number,
): Promise<{ paged: number; relay: number }> {
  return {
    paged: await deviceSeconds((n) => op.run(false, n), budget / 2),
    relay: await deviceSeconds((n) => op.run(true, n), budget / 2),
  };
}

function fmtMs(s: number): string {
  return (s * 1000).toFixed(s < 0.01 ? 3 : 1);
}

/** Entry point for `deno task bench relay`. */
export async function main(args: string[]): Promise<void> {
  // Mesa's Vulkan driver warns on stderr when this is unset.
  if (!Deno.env.get("XDG_RUNTIME_DIR")) Deno.env.set("XDG_RUNTIME_DIR", Deno.makeTempDirSync());
  const { values } = parseArgs({
    args,
    options: {
      sizes: { type: "string", default: "512,2048,8192" },
      batches: { type: "string", default: "1,8,32,64" },
      own: { type: "string", default: "128" },
      heads: { type: "string", default: "8" },
      "kv-heads": { type: "string", default: "8" },
      "head-dim": { type: "string", default: "64" },
      paths: { type: "string", default: "ts,webgpu" },
      model: { type: "string", default: "tiny" },
      "e2e-prompt": { type: "string", default: "2048" },
      "e2e-batch": { type: "string", default: "32" },
      "e2e-steps": { type: "string", default: "16" },
      "no-e2e": { type: "boolean", default: false },
      "budget-s": { type: "string", default: "20" },
    },
  });
  const sizes = list(values.sizes);
  const batches = list(values.batches);
  const own = Number(values.own);
  const budget = Number(values["budget-s"]);
  const paths = values.paths.split(",");
  const head = {
    nHeads: Number(values.heads),
    nKvHeads: Number(values["kv-heads"]),
    headDim: Number(values["head-dim"]),
    blockSize: 16,
  };
  const gpu = paths.includes("webgpu")
    ? await openGpu().catch((e) => {
      console.log(`webgpu: skipped (${e.message})`);
      return undefined;
    })
    : undefined;
  if (gpu) {
    console.log(
      `webgpu adapter: ${gpu.info.description}${gpu.info.isFallback ? " (fallback)" : ""}`,
    );
  }
  console.log(
    `attention: ${head.nHeads} heads, ${head.nKvHeads} KV heads, head dim ${head.headDim}, ` +
      `own tokens U = ${own}, one decode query per sequence`,
  );
  console.log("path    S      B   paged ms   relay ms  speedup  IO bound  of bound");
  for (const S of sizes) {
    for (const B of batches) {
      const p: AttentionProblem = { ...head, batch: B, shared: S, own };
      const d = data(p);
      const bound = relayIoBound(B, S, own);
      const row = (path: string, r: { paged: number; relay: number }) => {
        const speedup = r.paged / r.relay;
        console.log(
          `${path.padEnd(7)} ${String(S).padEnd(6)} ${String(B).padStart(2)} ${
            fmtMs(r.paged).padStart(10)
          } ${fmtMs(r.relay).padStart(10)} ${speedup.toFixed(2).padStart(8)} ${
            bound.toFixed(2).padStart(9)
          } ${(100 * speedup / bound).toFixed(0).padStart(8)}%`,
        );
      };
      if (paths.includes("ts")) row("ts", await tsPath(p, d, budget));
      if (gpu) {
        let op: GpuAttentionOp | undefined;
        try {
          op = await GpuAttentionOp.create(gpu, p, d);
          row("webgpu", await gpuPath(op, budget));
        } catch (e) {
          console.log(`webgpu  ${S} ${B}: skipped (${(e as Error).message})`);
        } finally {
          op?.destroy();
        }
      }
    }
  }
  if (gpu && !values["no-e2e"]) {
    gpu.device.destroy();
    await endToEnd(
      values.model,
      Number(values["e2e-prompt"]),
      Number(values["e2e-batch"]),
      Number(values["e2e-steps"]),
    );
  } else if (gpu) gpu.device.destroy();
}

/** Greedy decoding that never stops by itself. */
const GREEDY: SamplingParams = { ...GREEDY_ONCE, maxTokens: 1 << 20 };

/** Decode tokens per second of the webgpu executor, relay against inline attention. */
async function endToEnd(
  model: string,
  promptLen: number,
  batch: number,
  steps: number,
): Promise<void> {
  const m = presetModel(model);
  const blockSize = 16;
  const ownPrompt = 16;
  const blocksPer = Math.ceil((ownPrompt + steps + 1) / blockSize);
  const ctx = {
    model: m,
    kv: { blockSize, numBlocks: batch * blocksPer },
    limits: {
      maxBatchTokens: Math.max(batch * ownPrompt, 512),
      maxBatchSeqs: batch,
      maxModelLen: promptLen + ownPrompt + steps + 1,
    },
    seed: 0,
    log: () => {},
  };
  const prefix = Array.from({ length: promptLen }, (_, i) => 3 + ((i * 31) % 250));
  const results: Record<string, number> = {};
  const firstTokens: Record<string, number[]> = {};
  for (const mode of ["never", "always"]) {
    // One token per read-back in both, so that the ratio is the attention's alone.
    const options = webgpuExecutor.options.parse({ relay: mode, decodeAhead: 0 });
    const ex = await webgpuExecutor.create(options, ctx);
    const relay = { id: "system", tokens: prefix };
    const seqs: RelaySequence[] = Array.from({ length: batch }, (_, b) => ({
      id: `r${b}`,
      tokens: Array.from({ length: ownPrompt }, (_, i) => 3 + ((b * 7 + i) % 250)),
      startPos: promptLen,
      blockTable: Array.from({ length: blocksPer }, (_, i) => b * blocksPer + i),
      sample: true,
      sampling: GREEDY,
      outputIndex: 0,
      prefixed: true,
    }));
    const run = (step: number) => {
      const b: RelayBatch = {
        step,
        sequences: seqs,
        numTokens: seqs.reduce((a, s) => a + s.tokens.length, 0),
        numDecodes: step === 0 ? 0 : seqs.length,
        relay,
      };
      return ex.run(b);
    };
    // Prefill (includes computing the shared prompt's KV once), then timed decodes.
    let out = await run(0);
    const toks: number[] = [];
    const advance = () => {
      seqs.forEach((s, i) => {
        s.startPos += s.tokens.length;
        s.tokens = [out.tokens[i]];
        s.outputIndex++;
      });
      toks.push(out.tokens[0]);
    };
    advance();
    const t0 = performance.now();
    for (let step = 1; step <= steps; step++) {
      out = await run(step);
      advance();
    }
    const secs = (performance.now() - t0) / 1000;
    results[mode] = (steps * batch) / secs;
    firstTokens[mode] = toks;
    await ex.close?.();
  }
  const same = firstTokens.never.join() === firstTokens.always.join();
  console.log(
    `end-to-end decode, model ${model}, shared prompt ${promptLen}, ${batch} requests, ` +
      `${steps} steps: inline ${results.never.toFixed(1)} tok/s, relay ${
        results.always.toFixed(1)
      } tok/s, ratio ${(results.always / results.never).toFixed(2)}x (tokens ${
        same ? "identical" : "DIFFER"
      })`,
  );
}

if (import.meta.main) await main(Deno.args);
