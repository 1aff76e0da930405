/**
 * Load a Hugging Face Llama-family folder (Llama 2/3, Mistral, SmolLM): `config.json`,
 * `*.safetensors` (sharded through `model.safetensors.index.json`), `tokenizer.json`,
 * `tokenizer_config.json` and its chat template (or `chat_template.jinja`).
 *
 * Weight names and layouts are those of `LlamaForCausalLM`; linear weights are kept in
 * their `[out, in]` layout.
 *
 * @module
 */

import { UsageError } from "../errors.ts";
import { HfTokenizer, type TokenizerConfigJson } from "./hf_tokenizer.ts";
import { SafetensorsFolder, SUPPORTED_DTYPES, unsupportedDtype } from "./safetensors.ts";
import type { LayerWeights, Model, ModelConfig, ModelWeights } from "./types.ts";
import { dummyWeights } from "./dummy.ts";

async function readJson(
  path: string,
  required: boolean,
): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound && !required) return undefined;
    if (e instanceof Deno.errors.NotFound) throw new UsageError(`${path}: not found`, path);
    throw e;
  }
  try {
    const json = JSON.parse(text);
    if (typeof json !== "object" || json === null || Array.isArray(json)) {
      throw new SyntaxError("not an object");
    }
    return json;
  } catch (e) {
    throw new UsageError(`${path}: not a valid JSON object (${(e as Error).message})`, path);
  }
}

function intField(
  json: Record<string, unknown>,
  key: string,
  path: string,
  fallback?: number,
): number {
  const v = json[key] ?? fallback;
  if (!(typeof v === "number" && Number.isInteger(v) && v > 0)) {
    throw new UsageError(
      `${path}: "${key}" must be a positive integer, got ${JSON.stringify(json[key])}`,
    );
  }
  return v;
}

function numField(
  json: Record<string, unknown>,
  key: string,
  path: string,
  fallback: number,
): number {
  const v = json[key] ?? fallback;
  if (!(typeof v === "number" && v > 0)) {
    throw new UsageError(
      `${path}: "${key}" must be a positive number, got ${JSON.stringify(json[key])}`,
    );
  }
  return v;
}

function tokenIds(v: unknown): number[] {
  if (typeof v === "number") return [v];
  if (Array.isArray(v)) return v.filter((x): x is number => typeof x === "number");
  return [];
}

/**
 * Turn a `config.json` (LlamaConfig fields) into a {@link ModelConfig}. `generation` is
 * `generation_config.json`, whose EOS ids are added to the config's.
 */
export function parseHfConfig(
  json: Record<string, unknown>,
  path = "config.json",
  generation?: Record<string, unknown>,
): ModelConfig {
  const dim = intField(json, "hidden_size", path);
  const nHeads = intField(json, "num_attention_heads", path);
  const nKvHeads = intField(json, "num_key_value_heads", path, nHeads);
  const headDim = intField(json, "head_dim", path, dim / nHeads);
  if (nHeads % nKvHeads !== 0) {
    throw new UsageError(
      `${path}: num_attention_heads (${nHeads}) must be a multiple of num_key_value_heads (${nKvHeads})`,
    );
  }
  if (headDim % 2 !== 0) {
    throw new UsageError(`${path}: head_dim must be even for RoPE, got ${headDim}`);
  }
  const scaling = json.rope_scaling as { rope_type?: string; type?: string } | null | undefined;
  const scalingType = scaling?.rope_type ?? scaling?.type;
  if (scaling && scalingType !== "default") {
    throw new UsageError(
      `${path}: rope_scaling of type "${scalingType}" is not supported; supported: none or "default"`,
    );
  }
  const bos = tokenIds(json.bos_token_id);
  const eos = [...new Set([...tokenIds(json.eos_token_id), ...tokenIds(generation?.eos_token_id)])];
  return {
    dim,
    hiddenDim: intField(json, "intermediate_size", path),
    nLayers: intField(json, "num_hidden_layers", path),
    nHeads,
    nKvHeads,
    headDim,
    vocabSize: intField(json, "vocab_size", path),
    maxSeqLen: intField(json, "max_position_embeddings", path, 2048),
    ropeTheta: numField(json, "rope_theta", path, 10000),
    normEps: numField(json, "rms_norm_eps", path, 1e-6),
    tieEmbeddings: json.tie_word_embeddings === true,
    bosTokenId: bos.length > 0 ? bos[0] : -1,
    eosTokenIds: eos,
  };
}

/** Names and `[rows, cols]` shapes of the tensors a Llama folder must hold. */
function expectedTensors(config: ModelConfig, withLmHead: boolean): Map<string, [number, number]> {
  const { dim, hiddenDim, nHeads, nKvHeads, headDim, vocabSize } = config;
  const m = new Map<string, [number, number]>();
  m.set("model.embed_tokens.weight", [vocabSize, dim]);
  for (let l = 0; l < config.nLayers; l++) {
    const p = `model.layers.${l}.`;
    m.set(`${p}input_layernorm.weight`, [dim, 1]);
    m.set(`${p}self_attn.q_proj.weight`, [nHeads * headDim, dim]);
    m.set(`${p}self_attn.k_proj.weight`, [nKvHeads * headDim, dim]);
    m.set(`${p}self_attn.v_proj.weight`, [nKvHeads * headDim, dim]);
    m.set(`${p}self_attn.o_proj.weight`, [dim, nHeads * headDim]);
    m.set(`${p}post_attention_layernorm.weight`, [dim, 1]);
    m.set(`${p}mlp.gate_proj.weight`, [hiddenDim, dim]);
    m.set(`${p}mlp.down_proj.weight`, [dim, hiddenDim]);
    m.set(`${p}mlp.up_proj.weight`, [hiddenDim, dim]);
  }
  m.set("model.norm.weight", [dim, 1]);
  if (withLmHead) m.set("lm_head.weight", [vocabSize, dim]);
  return m;
}

/** Whether the LM head is its own tensor (not tied, and present). */
function hasOwnLmHead(folder: SafetensorsFolder, config: ModelConfig): boolean {
  return !config.tieEmbeddings && folder.has("lm_head.weight");
}

/**
 * Check that `folder` holds every tensor of `config` with the right shape and a
 * supported layout (no attention biases). Throws a UsageError naming the first problem.
 */
export function checkHfTensors(folder: SafetensorsFolder, config: ModelConfig): void {
  if (folder.has("model.layers.0.self_attn.q_proj.bias")) {
    throw new UsageError(
      `${folder.dir}: attention projections with biases (Qwen2-style) are not supported; ` +
        `supported: bias-free Llama-family attention`,
    );
  }
  for (const [name, [rows, cols]] of expectedTensors(config, hasOwnLmHead(folder, config))) {
    const info = folder.info(name);
    if (!info) throw new UsageError(`${folder.dir}: missing tensor "${name}"`);
    const size = info.shape.reduce((a, b) => a * b, 1);
    if (size !== rows * cols) {
      const want = cols === 1 ? `[${rows}]` : `[${rows}, ${cols}]`;
      throw new UsageError(
        `${folder.dir}: tensor "${name}" has shape [${info.shape}], expected ${want}`,
      );
    }
    if (!SUPPORTED_DTYPES.includes(info.dtype)) {
      throw unsupportedDtype(folder.dir, name, info.dtype);
    }
  }
}

/** Read a folder's tensors into {@link ModelWeights}, checking every shape. */
export async function readHfWeights(
  folder: SafetensorsFolder,
  config: ModelConfig,
): Promise<ModelWeights> {
  checkHfTensors(folder, config);
  const get = (name: string) => folder.read(name);
  const tokenEmbedding = await get("model.embed_tokens.weight");
  const layers: LayerWeights[] = [];
  for (let l = 0; l < config.nLayers; l++) {
    const p = `model.layers.${l}.`;
    layers.push({
      attnNorm: await get(`${p}input_layernorm.weight`),
      wq: await get(`${p}self_attn.q_proj.weight`),
      wk: await get(`${p}self_attn.k_proj.weight`),
      wv: await get(`${p}self_attn.v_proj.weight`),
      wo: await get(`${p}self_attn.o_proj.weight`),
      ffnNorm: await get(`${p}post_attention_layernorm.weight`),
      w1: await get(`${p}mlp.gate_proj.weight`),
      w2: await get(`${p}mlp.down_proj.weight`),
      w3: await get(`${p}mlp.up_proj.weight`),
    });
  }
  const finalNorm = await get("model.norm.weight");
  const lmHead = hasOwnLmHead(folder, config) ? await get("lm_head.weight") : tokenEmbedding;
  return { tokenEmbedding, layers, finalNorm, lmHead };
}

/** The most common stored dtype among a folder's tensors, as a Model reports it. */
function folderDtype(folder: SafetensorsFolder): "f32" | "f16" | "bf16" {
  const counts = new Map<string, number>();
  for (const name of folder.names()) {
    const d = folder.info(name)!.dtype;
    counts.set(d, (counts.get(d) ?? 0) + 1);
  }
  let best = "F32";
  let most = 0;
  for (const [d, n] of counts) if (n > most) [best, most] = [d, n];
  return best === "F16" ? "f16" : best === "BF16" ? "bf16" : "f32";
}

/** Options of {@link loadHfModel}. */
export interface HfLoadOptions {
  /** Use seeded dummy weights instead of the folder's safetensors (vLLM `--load-format dummy`). */
  dummy?: boolean;
  /** Seed of dummy weights. */
  seed?: number;
}

/** Load the model in folder `dir`; weights are read on the first `weights()` call. */
export async function loadHfModel(dir: string, options: HfLoadOptions = {}): Promise<Model> {
  const configPath = `${dir}/config.json`;
  const json = (await readJson(configPath, true))!;
  const generation = await readJson(`${dir}/generation_config.json`, false);
  const config = parseHfConfig(json, configPath, generation);

  const tokenizerJson = await readJson(`${dir}/tokenizer.json`, false);
  if (!tokenizerJson) {
    throw new UsageError(
      `${dir}: no tokenizer.json (only Hugging Face tokenizer.json files are supported)`,
    );
  }
  const tokenizerConfig =
    (await readJson(`${dir}/tokenizer_config.json`, false) ?? {}) as TokenizerConfigJson;
  let chatTemplate: string | undefined;
  try {
    chatTemplate = await Deno.readTextFile(`${dir}/chat_template.jinja`);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const tokenizer = new HfTokenizer(tokenizerJson, tokenizerConfig, chatTemplate, {
    bos: config.bosTokenId,
    eos: config.eosTokenIds[0],
  });

  const name = dir.replace(/\/+$/, "").split("/").pop() || dir;
  if (options.dummy) {
    const seed = options.seed ?? 0;
    let cached: ModelWeights | undefined;
    return {
      name,
      config,
      tokenizer,
      source: `dummy(seed=${seed})`,
      dtype: "f32",
      weights: () => Promise.resolve(cached ??= dummyWeights(config, seed)),
    };
  }

  // Read the headers now, so that a corrupt or incomplete folder is reported at load time;
  // the files are opened again (and closed) when the weights are read.
  const folder = await SafetensorsFolder.open(dir);
  let dtype: "f32" | "f16" | "bf16";
  try {
    checkHfTensors(folder, config);
    dtype = folderDtype(folder);
  } finally {
    folder.close();
  }
  let loading: Promise<ModelWeights> | undefined;
  const load = async (): Promise<ModelWeights> => {
    const f = await SafetensorsFolder.open(dir);
    try {
      return await readHfWeights(f, config);
    } finally {
      f.close();
    }
  };
  return {
    name,
    config,
    tokenizer,
    source: dir,
    dtype,
    weights: () => loading ??= load(),
  };
}
