/**
 * Memory plan of the `wasm` executor: where the descriptor, the weights, the paged KV
 * cache and the activation buffers live in the one shared `WebAssembly.Memory`, and the
 * word indices of the descriptor the kernels read (mirroring `assembly/kernels.ts`).
 *
 * A wasm32 memory holds at most 4 GiB; a plan that does not fit is refused with a
 * `UsageError` that lists what takes the space.
 *
 * @module
 */

import type { ModelConfig } from "../../core/model/types.ts";
import { UsageError } from "../../core/errors.ts";

/** Descriptor word indices (i32 words), as in `assembly/kernels.ts`. */
export const D = {
  THREADS: 0,
  DIM: 1,
  DIMP: 2,
  HIDP: 3,
  LAYERS: 4,
  HEADS: 5,
  KVHEADS: 6,
  HEADDIM: 7,
  VOCAB: 8,
  BF16: 9,
  BLOCK: 10,
  EPS: 11,
  SCALE: 12,
  QKV: 13,
  QDIM: 14,
  KVDIM: 15,
  ATTP: 16,
  COS: 17,
  SIN: 18,
  EMB: 19,
  FNORM: 20,
  LMHEAD: 21,
  LAYERTAB: 22,
  X: 23,
  XB: 24,
  QKVBUF: 25,
  ATT: 26,
  H13: 27,
  HB: 28,
  LOGITS: 29,
  SCRATCH: 30,
  SCRATCH_STRIDE: 31,
  MB: 32,
  TOKENS: 33,
  POS: 34,
  TABLES: 35,
  OUTROWS: 36,
  T: 37,
  NOUT: 38,
  SPIN: 39,
  ROPEHALF: 40,
  PROFILE: 41,
  PROBE_ADDR: 42,
  PROBE_BYTES: 43,
  BASES: 44,
  FILL: 45,
  BAR_COUNT: 64,
  BAR_GEN: 80,
  ABORT: 96,
  /** Host-to-worker wake-up generation (not read by the kernels). */
  WORK_GEN: 112,
  /** Non-zero: workers leave their loop. */
  STOP: 113,
  /** First of the f64 profile slots. */
  PROF_SLOTS: 128,
} as const;

/** Names of the profiled phases, in slot order. */
export const PHASES: readonly string[] = [
  "embed",
  "qkv+rope+kv-store",
  "attention",
  "wo",
  "ffn-up",
  "ffn-down",
  "logits",
];

/**
 * Words per layer record: attnNorm, wqkv, wo, ffnNorm, w13, w2, kCache, vCache, kShared,
 * vShared.
 */
export const LAYER_WORDS = 10;

/** Byte address of the descriptor; the module's own static data sits below it. */
export const DESC_ADDR = 4096;
/** Bytes reserved for the descriptor. */
export const DESC_BYTES = 2048;
/** First byte the host allocates from. */
const HEAP_START = 65536;
/** Pages of 64 KiB in a full wasm32 memory. */
export const MAX_PAGES = 65536;

/** Round `n` up to a multiple of `m`. */
export function roundUp(n: number, m: number): number {
  return Math.ceil(n / m) * m;
}

/** Dimensions after padding, shared by the packer and the descriptor. */
export interface Dims {
  /** Model width. */
  dim: number;
  /** Model width padded to 8 (row stride of activations and of most weights). */
  dimP: number;
  /** Feed-forward width padded to 8. */
  hidP: number;
  /** Query width `nHeads * headDim`. */
  qDim: number;
  /** Key/value width `nKvHeads * headDim`. */
  kvDim: number;
  /** Query width padded to 8 (input width of `wo`). */
  attP: number;
  /** Rows of the fused q/k/v matrix. */
  qkvRows: number;
}

/** Padded dimensions of `config`. */
export function dims(config: ModelConfig): Dims {
  const qDim = config.nHeads * config.headDim;
  const kvDim = config.nKvHeads * config.headDim;
  return {
    dim: config.dim,
    dimP: roundUp(config.dim, 8),
    hidP: roundUp(config.hiddenDim, 8),
    qDim,
    kvDim,
    attP: roundUp(qDim, 8),
    qkvRows: qDim + 2 * kvDim,
  };
}

/** Addresses of one layer's tensors. */
export interface LayerAddrs {
  /** RMSNorm weight before attention (f32). */
  attnNorm: number;
  /** Fused `[wq; wk; wv]`. */
  wqkv: number;
  /** Output projection. */
  wo: number;
  /** RMSNorm weight before the feed-forward (f32). */
  ffnNorm: number;
  /** `w1` and `w3` rows interleaved by blocks of 4. */
  w13: number;
  /** Down projection. */
  w2: number;
  /** Paged K cache `[numBlocks * blockSize, kvDim]` (f32). */
  kCache: number;
  /** Paged V cache. */
  vCache: number;
  /** Shared-prompt K (RelayAttention), contiguous `[relayCapacity, kvDim]`, or 0. */
  kShared: number;
  /** Shared-prompt V, or 0. */
  vShared: number;
}

/** Everything the host needs to know about where things are. */
export interface MemoryPlan {
  /** Padded dimensions. */
  dims: Dims;
  /** Bytes per weight element (4 for f32, 2 for bf16). */
  weightBytes: number;
  /** Tokens per micro-batch. */
  microBatch: number;
  /** Tokens per KV block. */
  blockSize: number;
  /** Positions the RoPE tables cover. */
  ropeLen: number;
  /** Block-table entries the table area holds. */
  tableCapacity: number;
  /** Tokens of shared prompt (RelayAttention) the shared KV holds; 0 without it. */
  relayCapacity: number;
  /** Identity block table over the shared KV (used while filling it). */
  relayTable: number;
  /** Shared-prompt length per token of the micro-batch. */
  bases: number;
  /** Per-layer tensors. */
  layers: LayerAddrs[];
  /** Token embedding. */
  embedding: number;
  /** LM head (the embedding's address when tied). */
  lmHead: number;
  /** Final RMSNorm weight. */
  finalNorm: number;
  /** RoPE cosine table `[ropeLen, headDim / 2]`. */
  cos: number;
  /** RoPE sine table. */
  sin: number;
  /** Layer record table (LAYER_WORDS words per layer). */
  layerTable: number;
  /** Activation buffers. */
  x: number;
  /** Per-thread normalised rows. */
  xb: number;
  /** q/k/v of the micro-batch. */
  qkv: number;
  /** Attention output. */
  att: number;
  /** Gate and up projections, interleaved. */
  h13: number;
  /** SwiGLU output. */
  hb: number;
  /** Logits `[microBatch, vocab]`. */
  logits: number;
  /** Per-thread attention scratch. */
  scratch: number;
  /** Bytes of one thread's scratch. */
  scratchStride: number;
  /** Per-token inputs: token ids, positions, block-table addresses. */
  tokens: number;
  /** Positions. */
  pos: number;
  /** Block-table address per token. */
  tables: number;
  /** Rows whose logits are wanted. */
  outRows: number;
  /** Block-table area. */
  tableArea: number;
  /** Scratch for the bandwidth probe (may be 0 when none was asked for). */
  probe: number;
  /** Bytes of the probe area. */
  probeBytes: number;
  /** Total bytes used. */
  totalBytes: number;
  /** Pages of the memory. */
  pages: number;
  /** What takes the space, in bytes, for messages and reports. */
  breakdown: Record<string, number>;
}

/** Inputs of {@link planMemory}. */
export interface PlanInput {
  /** The model. */
  config: ModelConfig;
  /** "f32" or "bf16" weights. */
  dtype: "f32" | "bf16";
  /** Threads. */
  threads: number;
  /** KV pool geometry. */
  blockSize: number;
  /** Blocks in the pool. */
  numBlocks: number;
  /** Longest context to serve (RoPE table length). */
  maxLen: number;
  /** Most sequences in one step. */
  maxSeqs: number;
  /** Tokens per micro-batch. */
  microBatch: number;
  /** Bytes for a bandwidth probe area (benchmarks), default 0. */
  probeBytes?: number;
  /** Shared-prompt tokens to hold for RelayAttention, default 0. */
  relayTokens?: number;
}

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
}

/** Lay out memory; throws a `UsageError` when it does not fit in 4 GiB. */
export function planMemory(input: PlanInput): MemoryPlan {
  const { config, dtype, threads, blockSize, numBlocks, microBatch: mb } = input;
  const d = dims(config);
  const wb = dtype === "bf16" ? 2 : 4;
  let at = HEAP_START;
  const breakdown: Record<string, number> = {};
  const take = (bytes: number, what: string): number => {
    const addr = at;
    at = roundUp(at + bytes, 64);
    breakdown[what] = (breakdown[what] ?? 0) + bytes;
    return addr;
  };
  const tied = config.tieEmbeddings;
  const embedding = take(config.vocabSize * d.dimP * wb, "weights");
  const lmHead = tied ? embedding : take(config.vocabSize * d.dimP * wb, "weights");
  const finalNorm = take(config.dim * 4, "weights");
  const kvBytes = numBlocks * blockSize * d.kvDim * 4;
  const relayCapacity = roundUp(input.relayTokens ?? 0, blockSize);
  const sharedBytes = relayCapacity * d.kvDim * 4;
  const layers: LayerAddrs[] = [];
  for (let l = 0; l < config.nLayers; l++) {
    layers.push({
      attnNorm: take(config.dim * 4, "weights"),
      wqkv: take(d.qkvRows * d.dimP * wb, "weights"),
      wo: take(config.dim * d.attP * wb, "weights"),
      ffnNorm: take(config.dim * 4, "weights"),
      w13: take(2 * d.hidP * d.dimP * wb, "weights"),
      w2: take(config.dim * d.hidP * wb, "weights"),
      kCache: take(kvBytes, "kv cache"),
      vCache: take(kvBytes, "kv cache"),
      kShared: sharedBytes > 0 ? take(sharedBytes, "shared-prompt kv") : 0,
      vShared: sharedBytes > 0 ? take(sharedBytes, "shared-prompt kv") : 0,
    });
  }
  const half = config.headDim / 2;
  const ropeLen = Math.max(input.maxLen, 1);
  const cos = take(ropeLen * half * 4, "rope tables");
  const sin = take(ropeLen * half * 4, "rope tables");
  const layerTable = take(config.nLayers * LAYER_WORDS * 4, "buffers");
  const x = take(mb * d.dimP * 4, "buffers");
  const xb = take(threads * mb * d.dimP * 4, "buffers");
  const qkv = take(mb * d.qkvRows * 4, "buffers");
  const att = take(mb * d.attP * 4, "buffers");
  const h13 = take(mb * 2 * d.hidP * 4, "buffers");
  const hb = take(mb * d.hidP * 4, "buffers");
  const logits = take(mb * config.vocabSize * 4, "buffers");
  const scratchStride = roundUp(blockSize * 4, 64);
  const scratch = take(threads * scratchStride, "buffers");
  const tokens = take(mb * 4, "buffers");
  const pos = take(mb * 4, "buffers");
  const tables = take(mb * 4, "buffers");
  const outRows = take(mb * 4, "buffers");
  const bases = take(mb * 4, "buffers");
  const relayTable = take(Math.max(1, relayCapacity / blockSize) * 4, "buffers");
  const tableCapacity = Math.max(input.maxSeqs, mb) * Math.ceil(ropeLen / blockSize);
  const tableArea = take(tableCapacity * 4, "buffers");
  const probeBytes = input.probeBytes ?? 0;
  const probe = probeBytes > 0 ? take(probeBytes * 2, "bandwidth probe") : 0;
  const totalBytes = at;
  if (totalBytes > MAX_PAGES * 65536) {
    const parts = Object.entries(breakdown).map(([k, v]) => `${k} ${gib(v)}`).join(", ");
    throw new UsageError(
      `the wasm executor needs ${gib(totalBytes)} of WebAssembly memory (${parts}) but a ` +
        `wasm32 memory holds at most 4 GiB: use --executor.weights bf16, fewer KV blocks, ` +
        `or the webgpu executor for this model`,
      "--executor.weights",
    );
  }
  return {
    dims: d,
    weightBytes: wb,
    microBatch: mb,
    blockSize,
    ropeLen,
    tableCapacity,
    relayCapacity,
    relayTable,
    bases,
    layers,
    embedding,
    lmHead,
    finalNorm,
    cos,
    sin,
    layerTable,
    x,
    xb,
    qkv,
    att,
    h13,
    hb,
    logits,
    scratch,
    scratchStride,
    tokens,
    pos,
    tables,
    outRows,
    tableArea,
    probe,
    probeBytes,
    totalBytes,
    pages: Math.ceil(totalBytes / 65536),
    breakdown,
  };
}

/** Fill the descriptor words for `plan` (the per-step words are written later). */
export function writeDescriptor(
  mem: ArrayBuffer | SharedArrayBuffer,
  plan: MemoryPlan,
  config: ModelConfig,
  threads: number,
  spin: number,
): void {
  const w = new Int32Array(mem, DESC_ADDR, DESC_BYTES / 4);
  const f = new Float32Array(mem, DESC_ADDR, DESC_BYTES / 4);
  const d = plan.dims;
  w.fill(0);
  w[D.THREADS] = threads;
  w[D.DIM] = config.dim;
  w[D.DIMP] = d.dimP;
  w[D.HIDP] = d.hidP;
  w[D.LAYERS] = config.nLayers;
  w[D.HEADS] = config.nHeads;
  w[D.KVHEADS] = config.nKvHeads;
  w[D.HEADDIM] = config.headDim;
  w[D.VOCAB] = config.vocabSize;
  w[D.BF16] = plan.weightBytes === 2 ? 1 : 0;
  w[D.BLOCK] = plan.blockSize;
  f[D.EPS] = config.normEps;
  f[D.SCALE] = 1 / Math.sqrt(config.headDim);
  w[D.QKV] = d.qkvRows;
  w[D.QDIM] = d.qDim;
  w[D.KVDIM] = d.kvDim;
  w[D.ATTP] = d.attP;
  w[D.COS] = plan.cos;
  w[D.SIN] = plan.sin;
  w[D.EMB] = plan.embedding;
  w[D.FNORM] = plan.finalNorm;
  w[D.LMHEAD] = plan.lmHead;
  w[D.LAYERTAB] = plan.layerTable;
  w[D.X] = plan.x;
  w[D.XB] = plan.xb;
  w[D.QKVBUF] = plan.qkv;
  w[D.ATT] = plan.att;
  w[D.H13] = plan.h13;
  w[D.HB] = plan.hb;
  w[D.LOGITS] = plan.logits;
  w[D.SCRATCH] = plan.scratch;
  w[D.SCRATCH_STRIDE] = plan.scratchStride;
  w[D.MB] = plan.microBatch;
  w[D.TOKENS] = plan.tokens;
  w[D.POS] = plan.pos;
  w[D.TABLES] = plan.tables;
  w[D.OUTROWS] = plan.outRows;
  w[D.SPIN] = spin;
  w[D.ROPEHALF] = config.headDim / 2;
  w[D.BASES] = plan.bases;
  const identity = new Int32Array(mem, plan.relayTable, plan.relayCapacity / plan.blockSize);
  identity.forEach((_, i) => identity[i] = i);
  const lt = new Int32Array(mem, plan.layerTable, config.nLayers * LAYER_WORDS);
  plan.layers.forEach((l, i) => {
    lt.set(
      [l.attnNorm, l.wqkv, l.wo, l.ffnNorm, l.w13, l.w2, l.kCache, l.vCache, l.kShared, l.vShared],
      i * LAYER_WORDS,
    );
  });
}
