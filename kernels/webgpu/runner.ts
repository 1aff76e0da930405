/**
 * The model on the GPU: weights, KV pool (one buffer per layer, K then V), activations,
 * pipelines, and one forward pass per batch encoded into a single submission with a
 * single read-back (sampled token ids, the top-k candidates of rows sampling with top-k,
 * and the logits of the rows that need them).
 *
 * In Deno each `mapAsync` costs about 10 ms (deno-webgpu-wasm-notes, 0.1), so nothing is
 * read back per layer; greedy sampling and top-k selection run on the GPU.
 *
 * @module
 */

import type { ModelConfig, ModelWeights } from "../../core/model/types.ts";
import type { TokenIds } from "../../core/types.ts";
import type { Gpu } from "./device.ts";
import { UsageError } from "../../core/errors.ts";
import {
  bind,
  buffer,
  pipeline,
  type Signature,
  signature,
  STORAGE,
  upload,
  uploadWeight,
} from "./resources.ts";
import { INFO_WORDS, STEP_WORDS, type WeightType } from "./wgsl/common.ts";
import {
  type LinearSpec,
  matmulShader,
  matvecShader,
  MM_TILE,
  MV_ROWS,
  subgroupLayoutOk,
  subgroupProbeShader,
} from "./wgsl/matmul.ts";
import {
  argmaxShader,
  type AttnGeometry,
  embedShader,
  feedShader,
  rmsnormShader,
  ropeStoreShader,
  siluMulShader,
} from "./wgsl/elementwise.ts";
import { TOPK_MAX, topKShader } from "./wgsl/topk.ts";
import {
  pagedAttentionShader,
  SHARED_TILES,
  sharedAttentionShader,
  sharedSplits,
  sharedTile,
  sharedTileKeys,
} from "./wgsl/attention.ts";

/** Sizes the runner is built for. */
export interface RunnerLimits {
  /** Most tokens in one forward pass. */
  maxTokens: number;
  /** Most sequences in one forward pass. */
  maxSeqs: number;
  /** Positions are below this. */
  maxPositions: number;
  /** KV blocks in the pool. */
  numBlocks: number;
  /** Tokens per block. */
  blockSize: number;
  /** Batches of at most this many tokens use the matrix-vector kernels. */
  matvecMaxRows: number;
  /**
   * Extra KV blocks after the pool's, ids `numBlocks ..`, for decoding ahead past the
   * blocks the engine has allocated (default 0).
   */
  scratchBlocks?: number;
}

/** One sequence of a forward pass, flattened for the GPU. */
export interface RunnerSequence {
  /** Token ids fed. */
  tokens: TokenIds;
  /** Position of the first token. */
  startPos: number;
  /** Block table of the positions at or after `prefixLen`. */
  blockTable: readonly number[];
  /** Leading positions whose KV is in the shared relay buffers (0: none). */
  prefixLen: number;
  /** 0: no shared prefix; 1: relay (fused with the system part); 2: shared read inline. */
  mode: 0 | 1 | 2;
  /** Sample after the last token. */
  sample: boolean;
  /** Read this row's logits back. */
  wantLogits: boolean;
  /** Select this row's `topK` most probable tokens on the GPU and read them back (0: no). */
  topK?: number;
}

/** A row's top-k candidates: token ids (any order) and their logits. */
export interface TopKCandidates {
  /** Token ids. */
  ids: Int32Array;
  /** `logits[j]` is the logit of `ids[j]`. */
  logits: Float32Array;
}

/**
 * Decoding ahead: after the pass, `steps` more sub-steps in the same submission, each
 * feeding every listed sequence the token it just sampled (greedy, on the device) at its
 * next position. The KV of those positions is written through `tables`.
 */
export interface DecodeAhead {
  /** Extra sub-steps: each yields one more token per listed sequence. */
  steps: number;
  /** Indices into the pass's sequences of those that continue (each samples in the pass). */
  seqs: readonly number[];
  /**
   * Their block tables covering every position written ahead (pool blocks, then scratch
   * blocks where the engine has not allocated yet).
   */
  tables: readonly (readonly number[])[];
}

/** What one forward pass returns, per sequence. */
export interface RunnerResult {
  /** Greedy token per sequence, -1 where it does not sample. */
  greedy: Int32Array;
  /** Logits per sequence where asked for. */
  logits: (Float32Array | undefined)[];
  /** Top-k candidates per sequence where asked for. */
  candidates: (TopKCandidates | undefined)[];
  /**
   * Decoding ahead: token of listed sequence `a` after sub-step `j` (1-based) at
   * `(j - 1) * seqs.length + a`; empty without it.
   */
  ahead: Int32Array;
}

type LinearName = "qkv" | "wo" | "w13" | "w2" | "lm";

interface Linear {
  spec: LinearSpec;
  mv: GPUComputePipeline;
  mm: GPUComputePipeline;
}

/** Where each part of a pass's read-back lies, in bytes (`aheadWords`: u32 tokens ahead). */
interface ReadbackLayout {
  logitsAt: number;
  topkAt: number[];
  aheadAt: number;
  aheadWords: number;
  bytes: number;
}

/** One pass, described for the device. */
interface PassData {
  /** Tokens. */
  T: number;
  /** Metadata words. */
  meta: Uint32Array<ArrayBuffer>;
  /** The step uniform. */
  step: Uint32Array<ArrayBuffer>;
  /** Key ranges of the relay system part. */
  splits: number;
  /** Offset of the feed list (decoding ahead) in `meta`. */
  feedOff: number;
  /** Sequences that sample, in sampled-row order. */
  samples: number[];
  /** Sequences whose logits are read back. */
  logitRows: number[];
  /** Sequences that select their top-k. */
  topkRows: number[];
}

/** Runs forward passes of one model on one device. */
export class GpuRunner {
  /** The device. */
  readonly gpu: Gpu;
  /** Model shape. */
  readonly config: ModelConfig;
  /** Sizes. */
  readonly limits: RunnerLimits;
  /** Weight storage on the device. */
  readonly weightType: WeightType;
  /** Whether the matrix-vector kernels reduce with subgroup operations. */
  subgroups = false;
  /** Whether the relay system-part kernels fit this device (else shared prompts are read inline). */
  get relayKernels(): boolean {
    return this.#sharedTiles.length > 0;
  }
  /** Length of the shared relay prompt held, 0 when none. */
  sharedLen = 0;
  /** Id of the shared relay prompt held. */
  sharedId: string | undefined;
  /** Bytes the last forward pass read back (token ids, candidates, logits rows). */
  lastReadBytes = 0;
  /** Read-backs so far (one per forward pass that samples). */
  readbacks = 0;

  #device: GPUDevice;
  #geometry: AttnGeometry;
  #sig!: Record<string, Signature>;
  #pipes!: Record<string, GPUComputePipeline>;
  #linears!: Record<LinearName, Linear>;
  #bufs!: Record<string, GPUBuffer>;
  #layerBufs!: Record<string, GPUBuffer>[];
  #groups!: {
    embed: GPUBindGroup;
    layers: Record<string, GPUBindGroup>[];
    finalNorm: GPUBindGroup;
    lm: GPUBindGroup;
    argmax: GPUBindGroup;
    topk: GPUBindGroup;
    feed: GPUBindGroup;
  };
  #sharedCap = 0;
  #sharedTiles: number[] = [];
  #readback: GPUBuffer | undefined;
  #staging: GPUBuffer | undefined;
  #readbackBytes = 0;
  #metaWords: number;
  #qkvDim: number;
  #aoWords: number;

  private constructor(gpu: Gpu, config: ModelConfig, limits: RunnerLimits, type: WeightType) {
    this.gpu = gpu;
    this.config = config;
    this.limits = limits;
    this.weightType = type;
    this.#device = gpu.device;
    this.#geometry = {
      nHeads: config.nHeads,
      nKvHeads: config.nKvHeads,
      headDim: config.headDim,
      blockSize: limits.blockSize,
      numBlocks: limits.numBlocks + (limits.scratchBlocks ?? 0),
    };
    const maxTable = Math.ceil(limits.maxPositions / limits.blockSize) + 1;
    // Per sequence: info, block table, sampled row, (sampled row, k) of a top-k selection.
    this.#metaWords = 3 * limits.maxTokens + limits.maxSeqs * (INFO_WORDS + maxTable + 3);
    this.#qkvDim = (config.nHeads + 2 * config.nKvHeads) * config.headDim;
    this.#aoWords = limits.maxTokens * config.nHeads * (config.headDim + 1);
  }

  /** Upload the weights, allocate the KV pool and compile the kernels. */
  static async create(
    gpu: Gpu,
    config: ModelConfig,
    weights: ModelWeights,
    limits: RunnerLimits,
    type: WeightType,
    subgroups = false,
  ): Promise<GpuRunner> {
    const r = new GpuRunner(gpu, config, limits, type);
    r.subgroups = subgroups && gpu.info.subgroups && await subgroupsUsable(gpu.device);
    r.#allocate(weights);
    await r.#compile();
    r.#bindAll();
    return r;
  }

  #allocate(weights: ModelWeights): void {
    const d = this.#device;
    const c = this.config;
    const L = this.limits;
    const maxBind = this.gpu.info.maxStorageBufferBindingSize;
    const T = L.maxTokens;
    const S = L.maxSeqs;
    const kvDim = c.nKvHeads * c.headDim;
    const cacheBytes = 2 * this.#geometry.numBlocks * L.blockSize * kvDim * 4;
    if (cacheBytes > maxBind) {
      throw new UsageError(
        `executor webgpu: a layer's KV pool needs ${cacheBytes} bytes but this adapter binds ` +
          `at most ${maxBind}; use fewer KV blocks`,
      );
    }
    const ropeBytes = L.maxPositions * c.headDim * 4;
    if (ropeBytes > maxBind) {
      throw new UsageError(
        `executor webgpu: the RoPE table for ${L.maxPositions} positions needs ${ropeBytes} bytes ` +
          `but this adapter binds at most ${maxBind}; lower --max-model-len`,
      );
    }
    const f4 = (n: number) => n * 4;
    this.#bufs = {
      step: buffer(d, STEP_WORDS * 4, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, "step"),
      meta: buffer(d, f4(this.#metaWords), STORAGE, "meta"),
      aheadMeta: buffer(d, f4(this.#metaWords), STORAGE, "ahead-meta"),
      aheadStep: buffer(d, STEP_WORDS * 4, STORAGE, "ahead-step"),
      x: buffer(d, f4(T * c.dim), STORAGE, "x"),
      xn: buffer(d, f4(T * c.dim), STORAGE, "xn"),
      qkv: buffer(d, f4(T * this.#qkvDim), STORAGE, "qkv"),
      ao: buffer(d, f4(this.#aoWords), STORAGE, "attn-out"),
      sys: buffer(d, f4(this.#aoWords), STORAGE, "attn-sys"),
      gu: buffer(d, f4(T * 2 * c.hiddenDim), STORAGE, "gate-up"),
      h: buffer(d, f4(T * c.hiddenDim), STORAGE, "hidden"),
      xs: buffer(d, f4(S * c.dim), STORAGE, "x-sampled"),
      logits: buffer(d, f4(S * c.vocabSize), STORAGE, "logits"),
      ids: buffer(d, f4(S), STORAGE, "ids"),
      topk: buffer(d, f4(S * TOPK_MAX * 2), STORAGE, "top-k"),
      rope: upload(d, ropeTable(c, L.maxPositions), "rope"),
      finalNorm: upload(d, weights.finalNorm, "final-norm"),
      emb: uploadWeight(d, weights.tokenEmbedding, this.weightType, maxBind, "embedding"),
    };
    this.#bufs.lm = weights.lmHead === weights.tokenEmbedding
      ? this.#bufs.emb
      : uploadWeight(d, weights.lmHead, this.weightType, maxBind, "lm-head");
    this.#layerBufs = weights.layers.map((w, l) => ({
      attnNorm: upload(d, w.attnNorm, `attn-norm-${l}`),
      ffnNorm: upload(d, w.ffnNorm, `ffn-norm-${l}`),
      qkv: uploadWeight(d, concat([w.wq, w.wk, w.wv]), this.weightType, maxBind, `wqkv-${l}`),
      wo: uploadWeight(d, w.wo, this.weightType, maxBind, `wo-${l}`),
      w13: uploadWeight(d, concat([w.w1, w.w3]), this.weightType, maxBind, `w13-${l}`),
      w2: uploadWeight(d, w.w2, this.weightType, maxBind, `w2-${l}`),
      cache: buffer(d, cacheBytes, STORAGE, `kv-${l}`),
      sharedK: buffer(d, f4(kvDim), STORAGE, `shared-k-${l}`),
      sharedV: buffer(d, f4(kvDim), STORAGE, `shared-v-${l}`),
    }));
    this.#sharedCap = 1;
  }

  async #compile(): Promise<void> {
    const d = this.#device;
    const c = this.config;
    const g = this.#geometry;
    this.#sig = {
      linear: signature(d, ["ro", "ro", "rw", "uniform"]),
      embed: signature(d, ["ro", "ro", "rw", "uniform"]),
      norm: signature(d, ["ro", "ro", "rw", "uniform", "ro"]),
      silu: signature(d, ["ro", "rw", "uniform"]),
      rope: signature(d, ["rw", "ro", "uniform", "ro", "rw", "rw", "rw"]),
      attn: signature(d, ["ro", "ro", "uniform", "ro", "ro", "ro", "ro", "rw"]),
      shared: signature(d, ["ro", "uniform", "ro", "ro", "rw"]),
      argmax: signature(d, ["ro", "rw", "uniform"]),
      topk: signature(d, ["ro", "ro", "rw", "uniform"]),
      feed: signature(d, ["ro", "rw", "uniform"]),
    };
    const lseOff = this.limits.maxTokens * c.nHeads * c.headDim;
    const wgBytes = this.gpu.info.maxComputeWorkgroupStorageSize;
    this.#sharedTiles = SHARED_TILES.filter((tq) => sharedTileKeys(c.headDim, wgBytes, tq) > 0);
    const s = this.#sig;
    const jobs: Record<string, Promise<GPUComputePipeline>> = {
      embed: pipeline(d, s.embed, embedShader(c.dim, this.weightType), "embed"),
      norm: pipeline(d, s.norm, rmsnormShader(c.dim, c.normEps, false), "rmsnorm"),
      normGather: pipeline(d, s.norm, rmsnormShader(c.dim, c.normEps, true), "rmsnorm-gather"),
      silu: pipeline(d, s.silu, siluMulShader(c.hiddenDim), "silu-mul"),
      rope: pipeline(d, s.rope, ropeStoreShader(g), "rope-store"),
      attn: pipeline(
        d,
        s.attn,
        pagedAttentionShader(g, lseOff, this.gpu.info.maxComputeWorkgroupStorageSize),
        "paged-attention",
      ),
      argmax: pipeline(d, s.argmax, argmaxShader(c.vocabSize), "argmax"),
      topk: pipeline(d, s.topk, topKShader(c.vocabSize), "top-k"),
      feedFirst: pipeline(d, s.feed, feedShader(true), "feed-first"),
      feedNext: pipeline(d, s.feed, feedShader(false), "feed-next"),
    };
    for (const tq of this.#sharedTiles) {
      const tk = sharedTileKeys(c.headDim, wgBytes, tq);
      jobs[`shared${tq}`] = pipeline(
        d,
        s.shared,
        sharedAttentionShader(g, tk, tq),
        `shared-attention-${tq}`,
      );
    }
    const qDim = c.nHeads * c.headDim;
    const specs: Record<LinearName, LinearSpec> = {
      qkv: this.#spec(c.dim, this.#qkvDim, false, "rows"),
      wo: this.#spec(qDim, c.dim, true, "rows"),
      w13: this.#spec(c.dim, 2 * c.hiddenDim, false, "rows"),
      w2: this.#spec(c.hiddenDim, c.dim, true, "rows"),
      lm: this.#spec(c.dim, c.vocabSize, false, "samples"),
    };
    for (const [name, spec] of Object.entries(specs)) {
      jobs[`${name}-mv`] = pipeline(
        d,
        s.linear,
        matvecShader(spec, this.subgroups),
        `${name}-matvec`,
      );
      jobs[`${name}-mm`] = pipeline(d, s.linear, matmulShader(spec), `${name}-matmul`);
    }
    const names = Object.keys(jobs);
    const done = await Promise.all(names.map((n) => jobs[n]));
    this.#pipes = Object.fromEntries(names.map((n, i) => [n, done[i]]));
    this.#linears = Object.fromEntries(
      (Object.keys(specs) as LinearName[]).map((n) => [
        n,
        { spec: specs[n], mv: this.#pipes[`${n}-mv`], mm: this.#pipes[`${n}-mm`] },
      ]),
    ) as Record<LinearName, Linear>;
  }

  #spec(k: number, n: number, accumulate: boolean, count: "rows" | "samples"): LinearSpec {
    return { k, n, accumulate, count, weights: this.weightType };
  }

  #bindAll(): void {
    const d = this.#device;
    const b = this.#bufs;
    const s = this.#sig;
    this.#groups = {
      embed: bind(d, s.embed, [b.meta, b.emb, b.x, b.step]),
      finalNorm: bind(d, s.norm, [b.x, b.finalNorm, b.xs, b.step, b.meta]),
      lm: bind(d, s.linear, [b.xs, b.lm, b.logits, b.step]),
      argmax: bind(d, s.argmax, [b.logits, b.ids, b.step]),
      topk: bind(d, s.topk, [b.logits, b.meta, b.topk, b.step]),
      feed: bind(d, s.feed, [b.ids, b.meta, b.step]),
      layers: this.#layerBufs.map((w) => ({
        attnNorm: bind(d, s.norm, [b.x, w.attnNorm, b.xn, b.step, b.meta]),
        qkv: bind(d, s.linear, [b.xn, w.qkv, b.qkv, b.step]),
        rope: bind(d, s.rope, [b.qkv, b.meta, b.step, b.rope, w.cache, w.sharedK, w.sharedV]),
        shared: bind(d, s.shared, [b.qkv, b.step, w.sharedK, w.sharedV, b.sys]),
        attn: bind(d, s.attn, [b.qkv, b.meta, b.step, w.cache, w.sharedK, w.sharedV, b.sys, b.ao]),
        wo: bind(d, s.linear, [b.ao, w.wo, b.x, b.step]),
        ffnNorm: bind(d, s.norm, [b.x, w.ffnNorm, b.xn, b.step, b.meta]),
        w13: bind(d, s.linear, [b.xn, w.w13, b.gu, b.step]),
        silu: bind(d, s.silu, [b.gu, b.h, b.step]),
        w2: bind(d, s.linear, [b.h, w.w2, b.x, b.step]),
      })),
    };
  }

  /** Make room for a shared relay prompt of `len` tokens (rebinding what reads it). */
  #ensureShared(len: number): void {
    if (len <= this.#sharedCap) return;
    const kvDim = this.config.nKvHeads * this.config.headDim;
    const bytes = len * kvDim * 4;
    if (bytes > this.gpu.info.maxStorageBufferBindingSize) {
      throw new UsageError(
        `executor webgpu: a shared prompt of ${len} tokens needs ${bytes} bytes per layer; ` +
          `this adapter binds at most ${this.gpu.info.maxStorageBufferBindingSize}`,
      );
    }
    for (const [l, w] of this.#layerBufs.entries()) {
      w.sharedK.destroy();
      w.sharedV.destroy();
      w.sharedK = buffer(this.#device, bytes, STORAGE, `shared-k-${l}`);
      w.sharedV = buffer(this.#device, bytes, STORAGE, `shared-v-${l}`);
    }
    this.#sharedCap = len;
    this.#bindAll();
  }

  /**
   * Compute and keep the KV of a shared prompt (positions `0 .. tokens.length - 1`) in the
   * contiguous relay buffers, in chunks of at most `maxTokens`. No read-back.
   */
  fillShared(id: string, tokens: readonly number[]): void {
    this.#ensureShared(tokens.length);
    this.sharedId = undefined;
    for (let start = 0; start < tokens.length; start += this.limits.maxTokens) {
      const chunk = tokens.slice(start, start + this.limits.maxTokens);
      const seq: RunnerSequence = {
        tokens: chunk,
        startPos: start,
        blockTable: [],
        prefixLen: tokens.length,
        mode: 2,
        sample: false,
        wantLogits: false,
      };
      this.#encodeAndSubmit([seq], 0);
    }
    this.sharedId = id;
    this.sharedLen = tokens.length;
  }

  /**
   * One forward pass. `relayLen` > 0 runs the RelayAttention system part for the step's
   * mode-1 sequences. Resolves after the step's single read-back. `repeat` > 1 encodes the
   * same pass that many times in the one submission (for timing the device alone: the KV
   * writes land on the same slots, so the result is unchanged). `ahead` decodes further
   * in the same submission and read-back (see {@link DecodeAhead}).
   */
  async run(
    seqs: RunnerSequence[],
    relayLen: number,
    repeat = 1,
    ahead?: DecodeAhead,
  ): Promise<RunnerResult> {
    const pass = this.#encodeAndSubmit(seqs, relayLen, repeat, ahead);
    const { samples, logitRows, topkRows } = pass;
    const greedy = new Int32Array(seqs.length).fill(-1);
    const logits: (Float32Array | undefined)[] = new Array(seqs.length);
    const candidates: (TopKCandidates | undefined)[] = new Array(seqs.length);
    this.lastReadBytes = 0;
    if (samples.length === 0) return { greedy, logits, candidates, ahead: new Int32Array(0) };
    const layout = pass.layout!;
    const size = Math.ceil(layout.bytes / 8) * 8;
    const rb = this.#readback!;
    await rb.mapAsync(GPUMapMode.READ, 0, size);
    const data = rb.getMappedRange(0, size).slice(0);
    rb.unmap();
    if (this.gpu.errors.length > 0) {
      throw new Error(`webgpu: the device rejected work: ${this.gpu.errors.splice(0).join("; ")}`);
    }
    this.readbacks++;
    this.lastReadBytes = layout.bytes;
    const ids = new Uint32Array(data, 0, samples.length);
    samples.forEach((s, i) => greedy[s] = ids[i]);
    const vBytes = this.config.vocabSize * 4;
    logitRows.forEach((s, i) => {
      logits[s] = new Float32Array(data, layout.logitsAt + i * vBytes, this.config.vocabSize);
    });
    topkRows.forEach((s, i) => {
      const k = seqs[s].topK!;
      const pairs = new Uint32Array(data, layout.topkAt[i], 2 * k);
      const c = { ids: new Int32Array(k), logits: new Float32Array(k) };
      const bits = new Uint32Array(c.logits.buffer);
      for (let j = 0; j < k; j++) {
        c.ids[j] = pairs[2 * j];
        bits[j] = pairs[2 * j + 1];
      }
      candidates[s] = c;
    });
    const aheadIds = new Int32Array(data, layout.aheadAt, layout.aheadWords).slice();
    return { greedy, logits, candidates, ahead: aheadIds };
  }

  /** Seconds a read-back takes with nothing to wait for (Deno: about 10 ms): median of 3. */
  async readbackFloor(): Promise<number> {
    const d = this.#device;
    const src = buffer(d, 16, STORAGE, "floor-src");
    const rb = buffer(d, 16, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, "floor-rb");
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const enc = d.createCommandEncoder();
      enc.copyBufferToBuffer(src, 0, rb, 0, 16);
      d.queue.submit([enc.finish()]);
      const t = performance.now();
      await rb.mapAsync(GPUMapMode.READ);
      rb.unmap();
      times.push((performance.now() - t) / 1000);
    }
    src.destroy();
    rb.destroy();
    return times.sort((a, b) => a - b)[1];
  }

  /**
   * Copy whole KV blocks (every layer, K and V) from `from[i]` to `to[i]`, ordered before
   * any later pass; no read-back. WebGPU forbids a copy within one buffer, so the blocks
   * go through a staging buffer.
   */
  copyBlocks(from: readonly number[], to: readonly number[]): void {
    if (from.length === 0) return;
    const blockBytes = this.limits.blockSize * this.config.nKvHeads * this.config.headDim * 4;
    const vOff = this.#geometry.numBlocks * blockBytes;
    const bytes = this.#layerBufs.length * from.length * 2 * blockBytes;
    if (!this.#staging || this.#staging.size < bytes) {
      this.#staging?.destroy();
      this.#staging = buffer(this.#device, bytes, STORAGE, "kv-staging");
    }
    const stage = this.#staging;
    const enc = this.#device.createCommandEncoder();
    let at = 0;
    const parts: [GPUBuffer, number, number][] = [];
    for (const w of this.#layerBufs) {
      from.forEach((f, i) => {
        for (const off of [0, vOff]) {
          enc.copyBufferToBuffer(w.cache, off + f * blockBytes, stage, at, blockBytes);
          parts.push([w.cache, off + to[i] * blockBytes, at]);
          at += blockBytes;
        }
      });
    }
    for (const [cache, dst, src] of parts) {
      enc.copyBufferToBuffer(stage, src, cache, dst, blockBytes);
    }
    this.#device.queue.submit([enc.finish()]);
  }

  /** Where each part of the read-back lies: ids, logits rows, candidates, tokens ahead. */
  #readbackLayout(
    nSamples: number,
    nLogitRows: number,
    topkRows: number[],
    seqs: RunnerSequence[],
    aheadWords: number,
  ): ReadbackLayout {
    const logitsAt = Math.ceil(nSamples / 2) * 8;
    let at = logitsAt + nLogitRows * this.config.vocabSize * 4;
    const topkAt = topkRows.map((s) => {
      const here = at;
      at += seqs[s].topK! * 8;
      return here;
    });
    return { logitsAt, topkAt, aheadAt: at, aheadWords, bytes: at + aheadWords * 4 };
  }

  #ensureReadback(bytes: number): GPUBuffer {
    if (!this.#readback || this.#readbackBytes < bytes) {
      this.#readback?.destroy();
      this.#readbackBytes = Math.max(bytes, 2 * this.#readbackBytes);
      this.#readback = buffer(
        this.#device,
        this.#readbackBytes,
        GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
        "readback",
      );
    }
    return this.#readback;
  }

  /**
   * The metadata and step uniform of a pass over `seqs`, checked: tokens | positions |
   * sequence of each token | per-sequence info | tables | sampled rows | top-k pairs.
   * Block ids must lie below `blocks`.
   */
  #describe(seqs: RunnerSequence[], relayLen: number, blocks: number, extraWords = 0): PassData {
    const c = this.config;
    const L = this.limits;
    let T = 0;
    for (const s of seqs) T += s.tokens.length;
    if (T > L.maxTokens) throw new RangeError(`batch of ${T} tokens exceeds ${L.maxTokens}`);
    if (seqs.length > L.maxSeqs) {
      throw new RangeError(`batch of ${seqs.length} sequences exceeds ${L.maxSeqs}`);
    }
    const posOff = T;
    const seqOff = 2 * T;
    const infoOff = 3 * T;
    const tableOff = infoOff + seqs.length * INFO_WORDS;
    let tableWords = 0;
    for (const s of seqs) tableWords += s.blockTable.length;
    const sampleOff = tableOff + tableWords;
    const samples: number[] = [];
    const sampleRows: number[] = [];
    const logitRows: number[] = [];
    const topkRows: number[] = [];
    const topkPairs: number[] = [];
    let row = 0;
    seqs.forEach((s, i) => {
      row += s.tokens.length;
      if (s.sample && s.tokens.length > 0) {
        if (s.wantLogits) logitRows.push(i);
        const k = s.topK ?? 0;
        if (k > 0) {
          if (!(Number.isInteger(k) && k <= TOPK_MAX && k < c.vocabSize)) {
            throw new RangeError(
              `top-k ${k} on the GPU must be in 1..${TOPK_MAX}, below the vocabulary`,
            );
          }
          topkRows.push(i);
          topkPairs.push(samples.length, k);
        }
        samples.push(i);
        sampleRows.push(row - 1);
      }
    });
    const topkOff = sampleOff + samples.length;
    const feedOff = topkOff + topkPairs.length;
    const words = feedOff + extraWords;
    if (words > this.#metaWords) throw new RangeError("batch metadata exceeds its buffer");
    const meta = new Uint32Array(words);
    let t = 0;
    let table = 0;
    seqs.forEach((s, i) => {
      const end = s.startPos + s.tokens.length;
      if (end > L.maxPositions) {
        throw new RangeError(`position ${end - 1} is beyond the model's ${L.maxPositions}`);
      }
      const own = Math.max(0, end - s.prefixLen);
      if (Math.ceil(own / L.blockSize) > s.blockTable.length) {
        throw new RangeError(
          `a block table of ${s.blockTable.length} blocks cannot hold ${own} tokens`,
        );
      }
      for (const b of s.blockTable) {
        if (!(b >= 0 && b < blocks)) throw new RangeError(`block ${b} is outside the pool`);
      }
      for (let j = 0; j < s.tokens.length; j++) {
        const tok = s.tokens[j];
        if (!(Number.isInteger(tok) && tok >= 0 && tok < c.vocabSize)) {
          throw new RangeError(`token ${tok} is outside 0..${c.vocabSize - 1}`);
        }
        meta[t] = tok;
        meta[posOff + t] = s.startPos + j;
        meta[seqOff + t] = i;
        t++;
      }
      meta[infoOff + i * INFO_WORDS] = table;
      meta[infoOff + i * INFO_WORDS + 1] = s.prefixLen;
      meta[infoOff + i * INFO_WORDS + 2] = s.mode;
      meta.set(s.blockTable, tableOff + table);
      table += s.blockTable.length;
    });
    meta.set(sampleRows, sampleOff);
    meta.set(topkPairs, topkOff);
    const splits = relayLen > 0 ? sharedSplits(relayLen, T, this.#geometry, this.#aoWords) : 0;
    const step = new Uint32Array(STEP_WORDS);
    step.set([
      T,
      samples.length,
      seqs.length,
      relayLen,
      posOff,
      seqOff,
      infoOff,
      tableOff,
      sampleOff,
      splits,
      topkOff,
      topkRows.length,
      feedOff,
    ]);
    return { T, meta, step, splits, feedOff, samples, logitRows, topkRows };
  }

  /**
   * The sub-steps of decoding ahead: one token per listed sequence, at the position after
   * its last fed token, with `ahead.tables`; the first sub-step feeds each row the token
   * sampled for its sequence in the pass (`first.samples` order).
   */
  #describeAhead(seqs: RunnerSequence[], first: PassData, relayLen: number, ahead: DecodeAhead) {
    const L = this.limits;
    const n = ahead.seqs.length;
    const rows: RunnerSequence[] = ahead.seqs.map((i, a) => {
      const s = seqs[i];
      const next = s.startPos + s.tokens.length;
      const last = next + ahead.steps - 1;
      if (!s.sample || last >= L.maxPositions) {
        throw new RangeError(`sequence ${i} cannot decode ${ahead.steps} tokens ahead`);
      }
      const own = last + 1 - s.prefixLen;
      if (Math.ceil(own / L.blockSize) > ahead.tables[a].length) {
        throw new RangeError(`a block table ahead cannot hold ${own} tokens`);
      }
      return {
        ...s,
        tokens: [0],
        startPos: next,
        blockTable: ahead.tables[a],
        sample: true,
        wantLogits: false,
        topK: 0,
      };
    });
    const data = this.#describe(rows, relayLen, this.#geometry.numBlocks, n);
    ahead.seqs.forEach((i, a) => data.meta[data.feedOff + a] = first.samples.indexOf(i));
    return data;
  }

  #encodeAndSubmit(
    seqs: RunnerSequence[],
    relayLen: number,
    repeat = 1,
    ahead?: DecodeAhead,
  ): PassData & { layout?: ReadbackLayout } {
    const c = this.config;
    const first = this.#describe(seqs, relayLen, this.limits.numBlocks);
    if (first.T === 0) return first;
    const steps = ahead && ahead.seqs.length > 0 ? ahead.steps : 0;
    const more = steps > 0 ? this.#describeAhead(seqs, first, relayLen, ahead!) : undefined;
    const d = this.#device;
    const b = this.#bufs;
    d.queue.writeBuffer(b.meta, 0, first.meta);
    d.queue.writeBuffer(b.step, 0, first.step);
    if (more) {
      d.queue.writeBuffer(b.aheadMeta, 0, more.meta);
      d.queue.writeBuffer(b.aheadStep, 0, more.step);
    }
    const enc = d.createCommandEncoder();
    for (let i = 0; i < repeat; i++) this.#encodePass(enc, first);
    const { samples, logitRows, topkRows } = first;
    if (samples.length === 0) {
      d.queue.submit([enc.finish()]);
      return first;
    }
    const n = more ? more.samples.length : 0;
    const layout = this.#readbackLayout(
      samples.length,
      logitRows.length,
      topkRows,
      seqs,
      steps * n,
    );
    const rb = this.#ensureReadback(Math.ceil(layout.bytes / 8) * 8);
    const vBytes = c.vocabSize * 4;
    enc.copyBufferToBuffer(b.ids, 0, rb, 0, samples.length * 4);
    logitRows.forEach((s, i) => {
      const r = samples.indexOf(s);
      enc.copyBufferToBuffer(b.logits, r * vBytes, rb, layout.logitsAt + i * vBytes, vBytes);
    });
    topkRows.forEach((s, i) => {
      const bytes = seqs[s].topK! * 8;
      enc.copyBufferToBuffer(b.topk, i * TOPK_MAX * 8, rb, layout.topkAt[i], bytes);
    });
    if (more) {
      enc.copyBufferToBuffer(b.aheadMeta, 0, b.meta, 0, more.meta.byteLength);
      enc.copyBufferToBuffer(b.aheadStep, 0, b.step, 0, STEP_WORDS * 4);
      for (let j = 1; j <= steps; j++) {
        this.#encodePass(enc, more, j === 1 ? "first" : "next");
        enc.copyBufferToBuffer(b.ids, 0, rb, layout.aheadAt + (j - 1) * n * 4, n * 4);
      }
    }
    d.queue.submit([enc.finish()]);
    return { ...first, layout };
  }

  /**
   * Encode one forward pass as one compute pass; `feed` first feeds each row the token
   * just sampled (decoding ahead).
   */
  #encodePass(enc: GPUCommandEncoder, data: PassData, feed?: "first" | "next"): void {
    const T = data.T;
    const nSamples = data.samples.length;
    const nTopK = data.topkRows.length;
    const relayLen = data.step[3];
    const splits = data.splits;
    const c = this.config;
    const L = this.limits;
    const pass = enc.beginComputePass();
    const run = (p: GPUComputePipeline, g: GPUBindGroup, x: number, y = 1, z = 1) => {
      pass.setPipeline(p);
      pass.setBindGroup(0, g);
      pass.dispatchWorkgroups(x, y, z);
    };
    const linear = (name: LinearName, g: GPUBindGroup, rows: number) => {
      const lin = this.#linears[name];
      if (rows <= L.matvecMaxRows) run(lin.mv, g, Math.ceil(lin.spec.n / MV_ROWS));
      else run(lin.mm, g, Math.ceil(lin.spec.n / MM_TILE), Math.ceil(rows / MM_TILE));
    };
    const P = this.#pipes;
    const G = this.#groups;
    const group = c.nHeads / c.nKvHeads;
    if (feed) run(feed === "first" ? P.feedFirst : P.feedNext, G.feed, Math.ceil(T / 64));
    run(P.embed, G.embed, T);
    for (const lg of G.layers) {
      run(P.norm, lg.attnNorm, T);
      linear("qkv", lg.qkv, T);
      run(P.rope, lg.rope, T);
      if (relayLen > 0) {
        const tq = sharedTile(T * group, this.#sharedTiles);
        run(P[`shared${tq}`], lg.shared, Math.ceil((T * group) / tq), c.nKvHeads, splits);
      }
      run(P.attn, lg.attn, T, c.nHeads);
      linear("wo", lg.wo, T);
      run(P.norm, lg.ffnNorm, T);
      linear("w13", lg.w13, T);
      run(P.silu, lg.silu, T);
      linear("w2", lg.w2, T);
    }
    if (nSamples > 0) {
      run(P.normGather, G.finalNorm, nSamples);
      linear("lm", G.lm, nSamples);
      run(P.argmax, G.argmax, nSamples);
      if (nTopK > 0) run(P.topk, G.topk, nTopK);
    }
    pass.end();
  }

  /** Free every device buffer. */
  destroy(): void {
    for (const b of Object.values(this.#bufs)) b.destroy();
    for (const w of this.#layerBufs) for (const b of Object.values(w)) b.destroy();
    this.#readback?.destroy();
    this.#staging?.destroy();
  }
}

/**
 * Whether subgroup operations work here with the layout the matvec kernel assumes (full,
 * aligned subgroups); false on any failure, so the caller falls back to workgroup memory.
 */
async function subgroupsUsable(device: GPUDevice): Promise<boolean> {
  const words = 3 * 32 * MV_ROWS;
  try {
    const sig = signature(device, ["rw"]);
    const pipe = await pipeline(device, sig, subgroupProbeShader(), "subgroup-probe");
    const out = buffer(device, words * 4, STORAGE, "subgroup-probe");
    const rb = buffer(device, words * 4, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, "rb");
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipe);
    pass.setBindGroup(0, bind(device, sig, [out]));
    pass.dispatchWorkgroups(1);
    pass.end();
    enc.copyBufferToBuffer(out, 0, rb, 0, words * 4);
    device.queue.submit([enc.finish()]);
    await rb.mapAsync(GPUMapMode.READ);
    const ok = subgroupLayoutOk(new Uint32Array(rb.getMappedRange().slice(0)));
    rb.unmap();
    out.destroy();
    rb.destroy();
    return ok;
  } catch {
    return false;
  }
}

/** Concatenate row-major matrices with the same row width. */
function concat(parts: Float32Array[]): Float32Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Float32Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** `(cos, sin)` of every position and frequency, computed in f64 as the reference does. */
function ropeTable(c: ModelConfig, positions: number): Float32Array {
  const half = c.headDim / 2;
  const out = new Float32Array(positions * half * 2);
  for (let i = 0; i < half; i++) {
    const freq = Math.pow(c.ropeTheta, (-2 * i) / c.headDim);
    for (let p = 0; p < positions; p++) {
      out[(p * half + i) * 2] = Math.cos(p * freq);
      out[(p * half + i) * 2 + 1] = Math.sin(p * freq);
    }
  }
  return out;
}
