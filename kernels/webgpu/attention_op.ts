/**
 * The attention kernels on their own, over given data: one decode query per sequence,
 * each sequence's context being a shared prompt of `S` tokens then `U` tokens of its own.
 * Runs either ordinary paged attention (the prompt's blocks appear in every block table,
 * as with prefix caching: stored once, read once per sequence) or RelayAttention (the
 * system part reads the prompt once for all queries, the per-request part is fused into
 * it). For the relay benchmark and the kernels' tests.
 *
 * @module
 */

import type { Gpu } from "./device.ts";
import { bind, buffer, pipeline, signature, STORAGE, upload } from "./resources.ts";
import { INFO_WORDS, STEP_WORDS } from "./wgsl/common.ts";
import type { AttnGeometry } from "./wgsl/elementwise.ts";
import {
  pagedAttentionShader,
  SHARED_TILES,
  sharedAttentionShader,
  sharedSplits,
  sharedTile,
  sharedTileKeys,
} from "./wgsl/attention.ts";

/** Shape of an attention problem. */
export interface AttentionProblem {
  /** Query heads. */
  nHeads: number;
  /** KV heads. */
  nKvHeads: number;
  /** Head width. */
  headDim: number;
  /** Tokens per KV block (divides `shared`). */
  blockSize: number;
  /** Sequences, one decode query each. */
  batch: number;
  /** Shared prompt length. */
  shared: number;
  /** Own tokens per sequence (the query is the last). */
  own: number;
}

/** Data of a problem: queries `[batch, nHeads * headDim]`, K/V rows of `nKvHeads * headDim`. */
export interface AttentionData {
  /** Queries. */
  q: Float32Array;
  /** Shared prompt keys, `[shared, kvDim]`. */
  sharedK: Float32Array;
  /** Shared prompt values. */
  sharedV: Float32Array;
  /** Own keys, `[batch, own, kvDim]`. */
  ownK: Float32Array;
  /** Own values. */
  ownV: Float32Array;
}

/** Attention of the problem's queries on the GPU, both ways. */
export class GpuAttentionOp {
  /** The problem. */
  readonly problem: AttentionProblem;
  /** Key ranges the system part is split into. */
  splits = 1;
  #device: GPUDevice;
  #paged!: { pipe: GPUComputePipeline; groupBase: GPUBindGroup; groupRelay: GPUBindGroup };
  #shared!: { pipe: GPUComputePipeline; group: GPUBindGroup };
  #tq = 16;
  #bufs: GPUBuffer[] = [];
  #out!: GPUBuffer;
  #readback!: GPUBuffer;

  private constructor(gpu: Gpu, problem: AttentionProblem) {
    this.#device = gpu.device;
    this.problem = problem;
  }

  /** Upload `data` and compile the kernels. */
  static async create(gpu: Gpu, p: AttentionProblem, data: AttentionData): Promise<GpuAttentionOp> {
    const op = new GpuAttentionOp(gpu, p);
    await op.#setup(gpu, data);
    return op;
  }

  async #setup(gpu: Gpu, data: AttentionData): Promise<void> {
    const d = this.#device;
    const p = this.problem;
    if (p.shared % p.blockSize !== 0) {
      throw new RangeError("shared must be a multiple of blockSize");
    }
    const kvDim = p.nKvHeads * p.headDim;
    const sharedBlocks = p.shared / p.blockSize;
    const ownBlocks = Math.ceil(p.own / p.blockSize);
    const numBlocks = sharedBlocks + p.batch * ownBlocks;
    const g: AttnGeometry = { ...p, numBlocks };
    this.splits = sharedSplits(p.shared, p.batch, g, Infinity);
    // Paged pool: the prompt in blocks 0..sharedBlocks-1, then each sequence's own blocks.
    const rowsTotal = numBlocks * p.blockSize;
    const cacheBytes = 2 * rowsTotal * kvDim * 4;
    if (cacheBytes > gpu.info.maxStorageBufferBindingSize) {
      throw new RangeError(
        `the KV pool needs ${cacheBytes} bytes; this adapter binds at most ` +
          `${gpu.info.maxStorageBufferBindingSize}`,
      );
    }
    const cache = new Float32Array(2 * rowsTotal * kvDim);
    cache.set(data.sharedK, 0);
    cache.set(data.sharedV, rowsTotal * kvDim);
    for (let b = 0; b < p.batch; b++) {
      const first = (sharedBlocks + b * ownBlocks) * p.blockSize;
      cache.set(data.ownK.subarray(b * p.own * kvDim, (b + 1) * p.own * kvDim), first * kvDim);
      cache.set(
        data.ownV.subarray(b * p.own * kvDim, (b + 1) * p.own * kvDim),
        (rowsTotal + first) * kvDim,
      );
    }
    // qkv rows: the query heads, then unused k/v slots.
    const qkvDim = (p.nHeads + 2 * p.nKvHeads) * p.headDim;
    const qkv = new Float32Array(p.batch * qkvDim);
    for (let b = 0; b < p.batch; b++) {
      qkv.set(
        data.q.subarray(b * p.nHeads * p.headDim, (b + 1) * p.nHeads * p.headDim),
        b * qkvDim,
      );
    }
    const T = p.batch;
    const meta = (relay: boolean): Uint32Array => {
      const tableOff = 3 * T + T * INFO_WORDS;
      const per = relay ? ownBlocks : sharedBlocks + ownBlocks;
      const m = new Uint32Array(tableOff + T * per);
      for (let b = 0; b < T; b++) {
        m[T + b] = p.shared + p.own - 1; // position of the query
        m[2 * T + b] = b;
        m[3 * T + b * INFO_WORDS] = b * per;
        m[3 * T + b * INFO_WORDS + 1] = relay ? p.shared : 0;
        m[3 * T + b * INFO_WORDS + 2] = relay ? 1 : 0;
        const table = m.subarray(tableOff + b * per, tableOff + (b + 1) * per);
        let k = 0;
        if (!relay) { for (let s = 0; s < sharedBlocks; s++) table[k++] = s; }
        for (let s = 0; s < ownBlocks; s++) table[k++] = sharedBlocks + b * ownBlocks + s;
      }
      return m;
    };
    const step = (relay: boolean): Uint32Array<ArrayBuffer> => {
      const s = new Uint32Array(STEP_WORDS);
      const splits = relay ? this.splits : 0;
      s.set([T, 0, T, relay ? p.shared : 0, T, 2 * T, 3 * T, 3 * T + T * INFO_WORDS, 0, splits]);
      return s;
    };
    const uniform = (data: Uint32Array<ArrayBuffer>) => {
      const b = buffer(
        d,
        data.byteLength,
        GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
        "step",
      );
      d.queue.writeBuffer(b, 0, data);
      return b;
    };
    const lseOff = T * p.nHeads * p.headDim;
    const bufs = {
      qkv: upload(d, qkv, "qkv"),
      cache: upload(d, cache, "cache"),
      sharedK: upload(d, data.sharedK.length ? data.sharedK : new Float32Array(4), "shared-k"),
      sharedV: upload(d, data.sharedV.length ? data.sharedV : new Float32Array(4), "shared-v"),
      metaBase: upload(d, meta(false), "meta-paged"),
      metaRelay: upload(d, meta(true), "meta-relay"),
      stepBase: uniform(step(false)),
      stepRelay: uniform(step(true)),
      sys: buffer(d, this.splits * T * p.nHeads * (p.headDim + 1) * 4, STORAGE, "sys"),
      out: buffer(d, (lseOff + T * p.nHeads) * 4, STORAGE, "out"),
    };
    this.#bufs = Object.values(bufs);
    this.#out = bufs.out;
    this.#readback = buffer(
      d,
      (lseOff + T * p.nHeads) * 4,
      GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      "readback",
    );
    const attnSig = signature(d, ["ro", "ro", "uniform", "ro", "ro", "ro", "ro", "rw"]);
    const sharedSig = signature(d, ["ro", "uniform", "ro", "ro", "rw"]);
    const wgBytes = gpu.info.maxComputeWorkgroupStorageSize;
    const tiles = SHARED_TILES.filter((tq) => sharedTileKeys(p.headDim, wgBytes, tq) > 0);
    this.#tq = sharedTile((p.batch * p.nHeads) / p.nKvHeads, tiles);
    const tk = sharedTileKeys(p.headDim, wgBytes, this.#tq);
    const [attn, shared] = await Promise.all([
      pipeline(
        d,
        attnSig,
        pagedAttentionShader(g, lseOff, gpu.info.maxComputeWorkgroupStorageSize),
        "paged-attention",
      ),
      pipeline(d, sharedSig, sharedAttentionShader(g, tk, this.#tq), "shared-attention"),
    ]);
    const common = [bufs.cache, bufs.sharedK, bufs.sharedV, bufs.sys, bufs.out];
    this.#paged = {
      pipe: attn,
      groupBase: bind(d, attnSig, [bufs.qkv, bufs.metaBase, bufs.stepBase, ...common]),
      groupRelay: bind(d, attnSig, [bufs.qkv, bufs.metaRelay, bufs.stepRelay, ...common]),
    };
    this.#shared = {
      pipe: shared,
      group: bind(d, sharedSig, [bufs.qkv, bufs.stepRelay, bufs.sharedK, bufs.sharedV, bufs.sys]),
    };
  }

  #encode(pass: GPUComputePassEncoder, relay: boolean): void {
    const p = this.problem;
    if (relay) {
      pass.setPipeline(this.#shared.pipe);
      pass.setBindGroup(0, this.#shared.group);
      const x = Math.ceil((p.batch * p.nHeads / p.nKvHeads) / this.#tq);
      pass.dispatchWorkgroups(x, p.nKvHeads, this.splits);
    }
    pass.setPipeline(this.#paged.pipe);
    pass.setBindGroup(0, relay ? this.#paged.groupRelay : this.#paged.groupBase);
    pass.dispatchWorkgroups(p.batch, p.nHeads);
  }

  /**
   * Run the attention `iters` times in one submission and read the last result back:
   * outputs `[batch, nHeads * headDim]` and log-sum-exps `[batch, nHeads]`.
   */
  async run(relay: boolean, iters = 1): Promise<{ out: Float32Array; lse: Float32Array }> {
    const p = this.problem;
    const enc = this.#device.createCommandEncoder();
    for (let i = 0; i < iters; i++) {
      const pass = enc.beginComputePass();
      this.#encode(pass, relay);
      pass.end();
    }
    const n = p.batch * p.nHeads;
    enc.copyBufferToBuffer(this.#out, 0, this.#readback, 0, n * (p.headDim + 1) * 4);
    this.#device.pushErrorScope("validation");
    this.#device.queue.submit([enc.finish()]);
    const err = await this.#device.popErrorScope();
    if (err) throw new Error(`attention kernels failed: ${err.message}`);
    await this.#readback.mapAsync(GPUMapMode.READ);
    const all = new Float32Array(this.#readback.getMappedRange().slice(0));
    this.#readback.unmap();
    return { out: all.slice(0, n * p.headDim), lse: all.slice(n * p.headDim, n * (p.headDim + 1)) };
  }

  /** Free the buffers. */
  destroy(): void {
    for (const b of this.#bufs) b.destroy();
    this.#readback.destroy();
  }
}
