/**
 * The `wasm` executor proper: packs the weights into the kernels' memory once, then runs
 * each batch as a sequence of micro-batches of at most `microBatch` tokens (causality
 * makes this exact: a later token of a chunk attends to K/V an earlier micro-batch has
 * already stored), and samples on the CPU with the shared sampler from the logits the
 * kernels leave in memory. Greedy requests without log-probabilities take the argmax in
 * WASM and copy no logits out. RelayAttention: a batch's shared prompt is computed once
 * per id into a contiguous KV buffer that `prefixed` sequences attend to first.
 *
 * @module
 */

import type { Executor, SwapCopy } from "../../core/slots.ts";
import type { Batch, StepOutput, TokenIds, TokenLogprob } from "../../core/types.ts";
import type { ModelConfig, ModelWeights } from "../../core/model/types.ts";
import { sampleToken } from "../../core/sampling.ts";
import { UsageError } from "../../core/errors.ts";
import { D, DESC_ADDR, type MemoryPlan, planMemory, writeDescriptor } from "./layout.ts";
import { packWeights, writeRope } from "./pack.ts";
import { KernelRuntime } from "./runtime.ts";
import type { KernelVariant } from "./module.ts";
import { HostSwapSpace } from "../host_swap.ts";

/** Settings of a {@link WasmExecutor}. */
export interface WasmExecutorOptions {
  /** Threads including the calling one. */
  threads: number;
  /** Weight storage. */
  weights: "f32" | "bf16";
  /** Return full logits of sampling sequences. */
  keepLogits: boolean;
  /** Tokens per forward pass. */
  microBatch: number;
  /** Spin iterations before a thread sleeps. */
  spin: number;
  /** Kernel build. */
  simd: KernelVariant | "auto";
  /** KV pool geometry. */
  blockSize: number;
  /** Blocks in the pool. */
  numBlocks: number;
  /** Longest context served. */
  maxModelLen: number;
  /** Most sequences per step. */
  maxBatchSeqs: number;
  /** Extra bytes for a bandwidth probe (benchmarks only). */
  probeBytes?: number;
  /** Shared-prompt tokens held for RelayAttention (0: no RelayAttention). */
  relayTokens?: number;
}

/** Check the model shapes the kernels support; UsageError otherwise. */
export function checkConfig(config: ModelConfig): void {
  const bad = (what: string) => {
    throw new UsageError(`the wasm executor cannot run this model: ${what}`, "--executor");
  };
  if (config.headDim % 2 !== 0) bad(`head size ${config.headDim} is odd (RoPE pairs values)`);
  if (config.nHeads % config.nKvHeads !== 0) {
    bad(`${config.nHeads} query heads do not split evenly over ${config.nKvHeads} KV heads`);
  }
}

/** Runs batches on the WASM kernels. */
export class WasmExecutor implements Executor {
  /** Always false: real tensors on the wall clock. */
  readonly simulated = false;
  /** It verifies draft tokens (speculative decoding). */
  readonly verify = true;
  /** Whether it runs RelayAttention batches (it holds shared-prompt KV). */
  readonly relay: boolean;
  /** The memory plan (addresses and sizes). */
  readonly plan: MemoryPlan;
  /** The kernel runtime (memory and threads). */
  readonly runtime: KernelRuntime;
  /** The resolved settings. */
  readonly options: Readonly<WasmExecutorOptions>;
  readonly #config: ModelConfig;
  readonly #i32: Int32Array;
  readonly #desc: Int32Array;
  #sharedId: string | undefined;
  #sharedLen = 0;
  readonly #host: HostSwapSpace;

  private constructor(
    config: ModelConfig,
    plan: MemoryPlan,
    runtime: KernelRuntime,
    options: WasmExecutorOptions,
  ) {
    this.#config = config;
    this.plan = plan;
    this.runtime = runtime;
    this.options = options;
    this.#i32 = new Int32Array(runtime.buffer);
    this.#desc = new Int32Array(runtime.buffer, DESC_ADDR, 256);
    this.relay = plan.relayCapacity > 0;
    // The KV pools live in the shared memory; the threads are idle between passes.
    const kvDim = plan.dims.kvDim;
    const floats = options.numBlocks * options.blockSize * kvDim;
    const view = (addr: number) => new Float32Array(runtime.buffer, addr, floats);
    this.#host = new HostSwapSpace(
      [...plan.layers.map((l) => view(l.kCache)), ...plan.layers.map((l) => view(l.vCache))],
      options.blockSize * kvDim,
    );
  }

  /** Swap KV blocks to host memory and back (preemption by swapping). */
  swap(out: readonly SwapCopy[], into: readonly SwapCopy[]): void {
    this.#host.swap(out, into);
  }

  /** Lay out memory, start the threads and copy the weights in. */
  static async create(
    config: ModelConfig,
    weights: ModelWeights,
    options: WasmExecutorOptions,
  ): Promise<WasmExecutor> {
    checkConfig(config);
    const plan = planMemory({
      config,
      dtype: options.weights,
      threads: options.threads,
      blockSize: options.blockSize,
      numBlocks: options.numBlocks,
      maxLen: Math.max(options.maxModelLen, 1),
      maxSeqs: options.maxBatchSeqs,
      microBatch: options.microBatch,
      probeBytes: options.probeBytes,
      relayTokens: options.relayTokens,
    });
    const runtime = await KernelRuntime.create({
      threads: options.threads,
      pages: plan.pages,
      spin: options.spin,
      variant: options.simd,
    });
    try {
      writeDescriptor(runtime.buffer, plan, config, options.threads, options.spin);
      packWeights(runtime.buffer, plan, config, weights);
      writeRope(runtime.buffer, plan, config);
    } catch (e) {
      await runtime.close();
      throw e;
    }
    return new WasmExecutor(config, plan, runtime, options);
  }

  /** Run one iteration: forward passes over micro-batches, then sampling. */
  run(batch: Batch): StepOutput {
    const cfg = this.#config;
    const plan = this.plan;
    const bs = this.options.blockSize;
    const seqs = batch.sequences;
    const i32 = this.#i32;
    if (batch.relay && batch.relay.id !== this.#sharedId) this.#fillShared(batch.relay);

    // Block tables into the table area; per sequence: where its own positions start.
    let tableAt = plan.tableArea;
    const tableEnd = plan.tableArea + plan.tableCapacity * 4;
    const tableAddr = new Array<number>(seqs.length);
    const base = new Array<number>(seqs.length);
    let total = 0;
    for (let s = 0; s < seqs.length; s++) {
      const seq = seqs[s];
      const end = seq.startPos + seq.tokens.length;
      if (!(Number.isInteger(seq.startPos) && seq.startPos >= 0)) {
        throw new RangeError(`sequence ${seq.id}: bad startPos ${seq.startPos}`);
      }
      if (end > plan.ropeLen) {
        throw new RangeError(
          `sequence ${seq.id} reaches position ${end - 1}; this executor serves ${plan.ropeLen}`,
        );
      }
      base[s] = 0;
      if (seq.prefixed) {
        if (this.#sharedId === undefined) {
          throw new RangeError(`sequence ${seq.id} is prefixed but no shared prompt was given`);
        }
        base[s] = this.#sharedLen;
        if (seq.startPos < base[s]) {
          throw new RangeError(`sequence ${seq.id} starts inside the shared prompt`);
        }
      }
      const nb = Math.ceil((end - base[s]) / bs);
      if (seq.blockTable.length < nb) {
        throw new RangeError(
          `sequence ${seq.id}: ${seq.blockTable.length} blocks do not cover ${end} positions`,
        );
      }
      if (tableAt + nb * 4 > tableEnd) throw new RangeError("batch block tables exceed capacity");
      for (let b = 0; b < nb; b++) {
        const block = seq.blockTable[b];
        if (!(Number.isInteger(block) && block >= 0 && block < this.options.numBlocks)) {
          throw new RangeError(`sequence ${seq.id}: block ${block} is outside the KV pool`);
        }
        i32[(tableAt >> 2) + b] = block;
      }
      for (const t of seq.tokens) {
        if (!(Number.isInteger(t) && t >= 0 && t < cfg.vocabSize)) {
          throw new RangeError(`sequence ${seq.id}: token ${t} is outside 0..${cfg.vocabSize - 1}`);
        }
      }
      tableAddr[s] = tableAt;
      tableAt += nb * 4;
      total += seq.tokens.length;
    }

    const tokens = new Int32Array(seqs.length).fill(-1);
    const logprobs: (TokenLogprob | undefined)[] = new Array(seqs.length);
    const logits: (Float32Array | undefined)[] | undefined = this.options.keepLogits
      ? new Array(seqs.length)
      : undefined;
    let anyLogprobs = false;
    let verified: StepOutput["verified"];
    const sampleRow = (si: number, k: number, j: number) => {
      const seq = seqs[si];
      const addr = plan.logits + k * cfg.vocabSize * 4;
      const p = seq.sampling;
      if (seq.drafts) {
        // Speculative decoding: the token after the row's j-th verified position.
        const v = (verified ??= new Array(seqs.length))[si] ??= new Int32Array(seq.drafts + 1);
        const view = new Float32Array(this.runtime.buffer, addr, cfg.vocabSize);
        v[j] = p.temperature > 0
          ? sampleToken(view, p, seq.outputIndex + j).token
          : this.runtime.argmax(addr, cfg.vocabSize);
        if (j === 0) {
          tokens[si] = v[0];
          if (logits) logits[si] = view.slice();
        }
        return;
      }
      if (!(p.temperature > 0) && p.logprobs < 0 && !logits) {
        tokens[si] = this.runtime.argmax(addr, cfg.vocabSize);
        return;
      }
      const view = new Float32Array(this.runtime.buffer, addr, cfg.vocabSize);
      const sampled = sampleToken(view, p, seq.outputIndex);
      tokens[si] = sampled.token;
      if (sampled.logprob) {
        logprobs[si] = sampled.logprob;
        anyLogprobs = true;
      }
      if (logits) logits[si] = view.slice();
    };
    this.#passes(
      seqs.map((q, s) => ({
        tokens: q.tokens,
        startPos: q.startPos,
        table: tableAddr[s],
        base: base[s],
        outputs: q.sample ? (q.drafts ?? 0) + 1 : 0,
      })),
      total,
      sampleRow,
    );
    const out: StepOutput = { tokens };
    if (verified) out.verified = verified;
    if (anyLogprobs) out.logprobs = logprobs;
    if (logits) out.logits = logits;
    return out;
  }

  /**
   * Feed `rows` (in order) through forward passes of at most `microBatch` tokens; after
   * each pass, `onLogits(row, k, j)` for each of a row's last `outputs` tokens fed in it
   * (`k`: its logits row; `j`: which of the row's outputs, from 0).
   */
  #passes(
    rows: { tokens: TokenIds; startPos: number; table: number; base: number; outputs: number }[],
    total: number,
    onLogits: (row: number, k: number, j: number) => void,
  ): void {
    const plan = this.plan;
    const i32 = this.#i32;
    const desc = this.#desc;
    const mb = plan.microBatch;
    let s = 0; // current row
    let i = 0; // next token of it
    while (s < rows.length && rows[s].tokens.length === 0) s++;
    for (let done = 0; done < total;) {
      const n = Math.min(mb, total - done);
      const out: number[] = [], which: number[] = [];
      let t = 0;
      while (t < n) {
        const r = rows[s];
        const take = Math.min(r.tokens.length - i, n - t);
        const firstOut = r.tokens.length - r.outputs;
        for (let k = 0; k < take; k++, t++) {
          i32[(plan.tokens >> 2) + t] = r.tokens[i + k];
          i32[(plan.pos >> 2) + t] = r.startPos + i + k;
          i32[(plan.tables >> 2) + t] = r.table;
          i32[(plan.bases >> 2) + t] = r.base;
          if (i + k >= firstOut) {
            i32[(plan.outRows >> 2) + out.length] = t;
            out.push(s);
            which.push(i + k - firstOut);
          }
        }
        i += take;
        if (i === r.tokens.length) {
          s++;
          i = 0;
          while (s < rows.length && rows[s].tokens.length === 0) s++;
        }
      }
      desc[D.T] = n;
      desc[D.NOUT] = out.length;
      this.runtime.forward();
      done += n;
      out.forEach((row, k) => onLogits(row, k, which[k]));
    }
  }

  /** Compute a shared prompt's K/V into the contiguous shared KV (RelayAttention). */
  #fillShared(relay: { id: string; tokens: readonly number[] }): void {
    const n = relay.tokens.length;
    if (n > this.plan.relayCapacity) {
      throw new UsageError(
        `the shared prompt has ${n} tokens but the wasm executor holds ${this.plan.relayCapacity}` +
          ` (--executor.relay-tokens)`,
        "--executor.relay-tokens",
      );
    }
    for (const t of relay.tokens) {
      if (!(Number.isInteger(t) && t >= 0 && t < this.#config.vocabSize)) {
        throw new RangeError(`shared prompt: token ${t} is outside the vocabulary`);
      }
    }
    this.#sharedId = undefined;
    this.#desc[D.FILL] = 1;
    try {
      const row = { tokens: [...relay.tokens], startPos: 0, table: this.plan.relayTable };
      this.#passes([{ ...row, base: 0, outputs: 0 }], n, () => {});
    } finally {
      this.#desc[D.FILL] = 0;
    }
    this.#sharedId = relay.id;
    this.#sharedLen = n;
  }

  /** Stop the threads; the executor cannot run afterwards. */
  close(): Promise<void> {
    return this.runtime.close();
  }
}
