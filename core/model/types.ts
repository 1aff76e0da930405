/**
 * Shapes of a Llama-family model: its configuration, its weights in f32, and its
 * tokenizer. Every executor reads these; loaders (Hugging Face folders, dummy weights)
 * produce them.
 *
 * Conventions (those of Hugging Face `LlamaForCausalLM`):
 * - linear weights are `[out, in]` row-major, `y[i] = sum_j W[i * in + j] * x[j]`;
 * - RoPE rotates the pairs `(i, i + headDim / 2)` of each head ("rotate half");
 * - query head `h` reads KV head `floor(h / (nHeads / nKvHeads))` (GQA).
 *
 * @module
 */

/** Dimensions and constants of a Llama-family model. */
export interface ModelConfig {
  /** Model width (hidden size). */
  dim: number;
  /** Width of the SwiGLU feed-forward layer. */
  hiddenDim: number;
  /** Transformer layers. */
  nLayers: number;
  /** Query heads. */
  nHeads: number;
  /** Key/value heads (fewer than `nHeads` for grouped-query attention). */
  nKvHeads: number;
  /** Width of one head, usually `dim / nHeads`. */
  headDim: number;
  /** Vocabulary size. */
  vocabSize: number;
  /** Longest context the model was built for. */
  maxSeqLen: number;
  /** RoPE base. */
  ropeTheta: number;
  /** RMSNorm epsilon. */
  normEps: number;
  /** Whether the LM head reuses the token embedding. */
  tieEmbeddings: boolean;
  /** Beginning-of-sequence token id, or -1. */
  bosTokenId: number;
  /** End-of-sequence token ids (the first is the canonical one). */
  eosTokenIds: number[];
}

/** Weights of one transformer layer, f32, `[out, in]` row-major. */
export interface LayerWeights {
  /** RMSNorm before attention, `[dim]`. */
  attnNorm: Float32Array;
  /** `[nHeads * headDim, dim]`. */
  wq: Float32Array;
  /** `[nKvHeads * headDim, dim]`. */
  wk: Float32Array;
  /** `[nKvHeads * headDim, dim]`. */
  wv: Float32Array;
  /** `[dim, nHeads * headDim]`. */
  wo: Float32Array;
  /** RMSNorm before the feed-forward, `[dim]`. */
  ffnNorm: Float32Array;
  /** Gate projection, `[hiddenDim, dim]`. */
  w1: Float32Array;
  /** Down projection, `[dim, hiddenDim]`. */
  w2: Float32Array;
  /** Up projection, `[hiddenDim, dim]`. */
  w3: Float32Array;
}

/** All weights of a model, f32. */
export interface ModelWeights {
  /** Token embedding, `[vocabSize, dim]`. */
  tokenEmbedding: Float32Array;
  /** Per-layer weights. */
  layers: LayerWeights[];
  /** Final RMSNorm, `[dim]`. */
  finalNorm: Float32Array;
  /** LM head, `[vocabSize, dim]` (the embedding itself when tied). */
  lmHead: Float32Array;
}

/** A chat message, as OpenAI's API carries it. */
export interface ChatMessage {
  /** "system", "user", "assistant" or "tool". */
  role: string;
  /** The text. */
  content: string;
}

/** Text to token ids and back. */
export interface Tokenizer {
  /** Number of token ids. */
  readonly vocabSize: number;
  /** Encode text (no special tokens added unless `addBos`). */
  encode(text: string, options?: { addBos?: boolean }): number[];
  /** Decode token ids to text; special tokens are skipped. */
  decode(ids: readonly number[]): string;
  /** Render a conversation into the prompt text the model expects. */
  applyChatTemplate(messages: ChatMessage[], options?: { addGenerationPrompt?: boolean }): string;
}

/** A loaded model: configuration and tokenizer at once, weights on demand. */
export interface Model {
  /** Name shown in `/v1/models` and reports (a preset name or the folder's base name). */
  readonly name: string;
  /** Dimensions. */
  readonly config: ModelConfig;
  /** The tokenizer. */
  readonly tokenizer: Tokenizer;
  /** Where the weights come from, e.g. "dummy(seed=0)" or the folder path. */
  readonly source: string;
  /** Data type of the stored weights ("f32", "f16", "bf16"); dummy weights are "f32". */
  readonly dtype: "f32" | "f16" | "bf16";
  /** Load (once) and return the weights as f32. Simulated executors never call this. */
  weights(): Promise<ModelWeights>;
}
