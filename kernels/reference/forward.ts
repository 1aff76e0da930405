/**
 * One forward pass over a batch that mixes prefill chunks and decodes, reading and
 * writing a paged KV store through each sequence's block table.
 *
 * The batch is flattened into rows, one per fed token (as vLLM does); every weight
 * matrix multiplies all rows at once, and attention is per row: the row at position `p`
 * attends to positions `0 ..= p` of its own sequence, read through the block table. A
 * row's own K/V and those of earlier rows of the same chunk are written to the store
 * before any row attends, so the causal mask is simply "positions up to `p`".
 *
 * @module
 */

import type { Batch } from "../../core/types.ts";
import type { ModelConfig, ModelWeights } from "../../core/model/types.ts";
import type { PagedKvStore } from "./kv_store.ts";
import { addInPlace, matmul, rmsnorm, rope, ropeFrequencies, softmax, swiglu } from "./ops.ts";
import {
  attendKeys,
  attendShared,
  contiguousKeys,
  type HeadShape,
  pagedKeys,
} from "../relay/attention.ts";

/** A shared prompt's KV (RelayAttention), contiguous: per layer `[length, nKvHeads * headDim]`. */
export interface SharedKv {
  /** Tokens in the shared prompt. */
  length: number;
  /** Keys per layer. */
  k: Float32Array[];
  /** Values per layer. */
  v: Float32Array[];
}

/** Scratch buffers for `rows` rows. */
interface Scratch {
  x: Float32Array; // residual stream [rows, dim]
  xb: Float32Array; // normed input [rows, dim]
  q: Float32Array; // [rows, qDim]
  k: Float32Array; // [rows, kvDim]
  v: Float32Array; // [rows, kvDim]
  att: Float32Array; // attention output [rows, qDim]
  proj: Float32Array; // projection back to the residual [rows, dim]
  gate: Float32Array; // [rows, hiddenDim]
  up: Float32Array; // [rows, hiddenDim]
}

function scratch(config: ModelConfig, rows: number): Scratch {
  const qDim = config.nHeads * config.headDim;
  const kvDim = config.nKvHeads * config.headDim;
  return {
    x: new Float32Array(rows * config.dim),
    xb: new Float32Array(rows * config.dim),
    q: new Float32Array(rows * qDim),
    k: new Float32Array(rows * kvDim),
    v: new Float32Array(rows * kvDim),
    att: new Float32Array(rows * qDim),
    proj: new Float32Array(rows * config.dim),
    gate: new Float32Array(rows * config.hiddenDim),
    up: new Float32Array(rows * config.hiddenDim),
  };
}

/**
 * Run `batch` through the model, writing each fed token's K/V into `kv`. Returns, per
 * sequence, the logits after its last fed token when `sample` is true, else undefined;
 * with `drafts`, the logits after each of its last `drafts + 1` fed tokens, row after row.
 *
 * With `shared` (RelayAttention), `prefixed` sequences see positions `0 .. length - 1` in
 * the shared KV and their own from `length` on, in blocks starting at that position. Their
 * attention is split as RelayAttention does: one pass of all their query rows over the
 * shared KV (read once for the step), then each sequence's own keys, seeded with that part
 * so the log-sum-exp merge is exact.
 */
export function forward(
  weights: ModelWeights,
  config: ModelConfig,
  kv: PagedKvStore,
  batch: Batch,
  shared?: SharedKv,
): (Float32Array | undefined)[] {
  const { dim, hiddenDim, nHeads, nKvHeads, headDim, vocabSize } = config;
  const qDim = nHeads * headDim;
  const kvDim = nKvHeads * headDim;
  const headsPerKv = nHeads / nKvHeads;
  const freqs = ropeFrequencies(headDim, config.ropeTheta);

  // Flatten: row r feeds token tokens[r] of sequence seqOf[r] at position pos[r].
  const tokens: number[] = [];
  const pos: number[] = [];
  const seqOf: number[] = [];
  batch.sequences.forEach((seq, s) => {
    if (!(Number.isInteger(seq.startPos) && seq.startPos >= 0)) {
      throw new RangeError(`sequence ${seq.id}: bad startPos ${seq.startPos}`);
    }
    seq.tokens.forEach((token, i) => {
      if (!(Number.isInteger(token) && token >= 0 && token < vocabSize)) {
        throw new RangeError(`sequence ${seq.id}: token ${token} is outside 0..${vocabSize - 1}`);
      }
      tokens.push(token);
      pos.push(seq.startPos + i);
      seqOf.push(s);
    });
  });
  const rows = tokens.length;
  const buf = scratch(config, rows);

  // RelayAttention: where each sequence's own positions start, and the rows after a shared prompt.
  const base = batch.sequences.map((seq) => (seq.prefixed ? shared?.length ?? -1 : 0));
  if (base.includes(-1)) throw new RangeError("a prefixed sequence needs the shared prompt's KV");
  const prefixedRows: number[] = [];
  for (let r = 0; r < rows; r++) if (base[seqOf[r]] > 0) prefixedRows.push(r);
  const relayAttention = (layer: number, scale: number) => {
    const shape: HeadShape = { nHeads, nKvHeads, headDim, scale };
    const n = prefixedRows.length;
    const q = new Float32Array(n * qDim);
    prefixedRows.forEach((r, i) => q.set(buf.q.subarray(r * qDim, (r + 1) * qDim), i * qDim));
    const sharedKeys = contiguousKeys(shared!.k[layer], shared!.v[layer], shape);
    const sharedPart = attendShared(q, n, sharedKeys, shared!.length, shape);
    // Each sequence's rows are consecutive: continue from the shared part over its own keys.
    for (let i = 0; i < n;) {
      const s = seqOf[prefixedRows[i]];
      let j = i;
      while (j < n && seqOf[prefixedRows[j]] === s) j++;
      const seq = batch.sequences[s];
      const own = pagedKeys(kv.k[layer], kv.v[layer], shape, kv.blockSize, seq.blockTable, base[s]);
      const ends = prefixedRows.slice(i, j).map((r) => pos[r] + 1);
      const seed = {
        out: sharedPart.out.subarray(i * qDim, j * qDim),
        lse: sharedPart.lse.subarray(i * nHeads, j * nHeads),
      };
      const part = attendKeys(
        q.subarray(i * qDim, j * qDim),
        j - i,
        own,
        base[s],
        ends,
        shape,
        seed,
      );
      for (let t = i; t < j; t++) {
        buf.att.set(part.out.subarray((t - i) * qDim, (t - i + 1) * qDim), prefixedRows[t] * qDim);
      }
      i = j;
    }
  };

  // Token embeddings.
  for (let r = 0; r < rows; r++) {
    buf.x.set(weights.tokenEmbedding.subarray(tokens[r] * dim, (tokens[r] + 1) * dim), r * dim);
  }

  let longest = 1;
  for (const p of pos) longest = Math.max(longest, p + 1);
  const scores = new Float64Array(longest);
  for (let l = 0; l < config.nLayers; l++) {
    const w = weights.layers[l];
    const keys = kv.k[l];
    const values = kv.v[l];

    // Attention: norm, q/k/v projections, RoPE.
    rmsnorm(buf.xb, buf.x, w.attnNorm, rows, dim, config.normEps);
    matmul(buf.q, buf.xb, w.wq, rows, dim, qDim);
    matmul(buf.k, buf.xb, w.wk, rows, dim, kvDim);
    matmul(buf.v, buf.xb, w.wv, rows, dim, kvDim);
    for (let r = 0; r < rows; r++) {
      rope(buf.q, r * qDim, nHeads, headDim, pos[r], freqs);
      rope(buf.k, r * kvDim, nKvHeads, headDim, pos[r], freqs);
    }

    // Store this step's K/V in the paged cache.
    for (let r = 0; r < rows; r++) {
      const at = kv.offset(batch.sequences[seqOf[r]].blockTable, pos[r] - base[seqOf[r]]);
      keys.set(buf.k.subarray(r * kvDim, (r + 1) * kvDim), at);
      values.set(buf.v.subarray(r * kvDim, (r + 1) * kvDim), at);
    }

    // Causal attention over positions 0..pos[r], through the block table (GQA: query
    // head h reads KV head floor(h / headsPerKv)).
    const scale = 1 / Math.sqrt(headDim);
    if (prefixedRows.length > 0) relayAttention(l, scale);
    for (let r = 0; r < rows; r++) {
      if (base[seqOf[r]] > 0) continue;
      const table = batch.sequences[seqOf[r]].blockTable;
      const n = pos[r] + 1;
      const offsets = new Int32Array(n);
      for (let p = 0; p < n; p++) offsets[p] = kv.offset(table, p);
      for (let h = 0; h < nHeads; h++) {
        const qh = r * qDim + h * headDim;
        const kvh = Math.floor(h / headsPerKv) * headDim;
        for (let p = 0; p < n; p++) {
          const kp = offsets[p] + kvh;
          let dot = 0;
          for (let i = 0; i < headDim; i++) dot += buf.q[qh + i] * keys[kp + i];
          scores[p] = dot * scale;
        }
        softmax(scores, n);
        const out = buf.att.subarray(qh, qh + headDim);
        out.fill(0);
        for (let p = 0; p < n; p++) {
          const vp = offsets[p] + kvh;
          for (let i = 0; i < headDim; i++) out[i] += scores[p] * values[vp + i];
        }
      }
    }
    matmul(buf.proj, buf.att, w.wo, rows, qDim, dim);
    addInPlace(buf.x, buf.proj, rows * dim);

    // Feed-forward: norm, SwiGLU, down projection.
    rmsnorm(buf.xb, buf.x, w.ffnNorm, rows, dim, config.normEps);
    matmul(buf.gate, buf.xb, w.w1, rows, dim, hiddenDim);
    matmul(buf.up, buf.xb, w.w3, rows, dim, hiddenDim);
    swiglu(buf.gate, buf.up, rows * hiddenDim);
    matmul(buf.proj, buf.gate, w.w2, rows, hiddenDim, dim);
    addInPlace(buf.x, buf.proj, rows * dim);
  }

  // Final norm and LM head, only for the last row of each sequence that samples (the last
  // `drafts + 1` rows of one that verifies drafts, one after the other).
  const logits: (Float32Array | undefined)[] = [];
  let row = 0;
  for (const seq of batch.sequences) {
    row += seq.tokens.length;
    if (!seq.sample || seq.tokens.length === 0) {
      logits.push(undefined);
      continue;
    }
    const n = (seq.drafts ?? 0) + 1;
    const normed = new Float32Array(n * dim);
    rmsnorm(
      normed,
      buf.x.subarray((row - n) * dim, row * dim),
      weights.finalNorm,
      n,
      dim,
      config.normEps,
    );
    const out = new Float32Array(n * vocabSize);
    matmul(out, normed, weights.lmHead, n, dim, vocabSize);
    logits.push(out);
  }
  return logits;
}
