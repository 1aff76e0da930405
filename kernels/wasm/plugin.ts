/**
 * The `wasm` executor plugin (slot `executor`): AssemblyScript kernels with SIMD over
 * several threads sharing one WebAssembly memory. The CPU executor to run for real.
 *
 * Weights: `auto` (the default) keeps them lossless, bf16 when the model's stored weights
 * are bf16 and f32 otherwise; `bf16` halves the bytes every decode step reads, which
 * speeds decode up where it is memory-bound (docs/WASM.md has the numbers), at bf16
 * rounding of the weights.
 *
 * @module
 */

import { z } from "zod";
import { definePlugin, type Plugin } from "../../plugins/define.ts";
import type { Executor, PluginContext } from "../../core/slots.ts";
import { WasmExecutor } from "./executor.ts";

const cores = typeof navigator !== "undefined" && navigator.hardwareConcurrency > 0
  ? Math.min(navigator.hardwareConcurrency, 64)
  : 1;

/** Options of the wasm executor. */
const options = z.object({
  threads: z.number().int().min(1).max(64).default(cores).describe(
    "kernel threads including the engine's own (default: number of cores)",
  ),
  weights: z.enum(["auto", "f32", "bf16"]).default("auto").describe(
    "weight storage: f32, bf16 (half the bytes per step), or auto (bf16 only for bf16 models)",
  ),
  keepLogits: z.boolean().default(false).describe(
    "return each sampling sequence's full logits (for comparing executors)",
  ),
  microBatch: z.number().int().min(1).max(1024).default(64).describe(
    "tokens per forward pass; longer batches run as several passes",
  ),
  spin: z.number().int().min(0).max(10_000_000).default(20000).describe(
    "spin iterations before a waiting thread sleeps",
  ),
  simd: z.enum(["auto", "relaxed-simd", "simd"]).default("auto").describe(
    "kernel build: relaxed-simd (fused multiply-add) where supported, else plain simd",
  ),
  relayTokens: z.number().int().min(0).max(65536).default(1024).describe(
    "longest shared prompt kept for RelayAttention (0 turns it off)",
  ),
});

async function create(opts: z.output<typeof options>, ctx: PluginContext): Promise<Executor> {
  const model = ctx.model;
  const weights = await model.weights();
  const dtype = opts.weights === "auto" ? (model.dtype === "bf16" ? "bf16" : "f32") : opts.weights;
  const exec = await WasmExecutor.create(model.config, weights, {
    threads: opts.threads,
    weights: dtype,
    keepLogits: opts.keepLogits,
    microBatch: opts.microBatch,
    spin: opts.spin,
    simd: opts.simd,
    blockSize: ctx.kv.blockSize,
    numBlocks: ctx.kv.numBlocks,
    maxModelLen: ctx.limits.maxModelLen,
    maxBatchSeqs: ctx.limits.maxBatchSeqs,
    relayTokens: Math.min(opts.relayTokens, ctx.limits.maxModelLen),
  });
  ctx.log(
    `${exec.options.threads} threads, ${exec.runtime.variant}, ${dtype} weights, ` +
      `${(exec.plan.totalBytes / 2 ** 20).toFixed(0)} MiB of WebAssembly memory`,
  );
  return exec;
}

/** The `wasm` executor plugin. */
export const wasmExecutor: Plugin<"executor", typeof options> = definePlugin({
  name: "wasm",
  slot: "executor",
  description: "AssemblyScript SIMD kernels on several threads over one shared memory.",
  options,
  create,
});

export default wasmExecutor;
