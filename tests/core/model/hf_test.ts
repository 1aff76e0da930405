import assert from "node:assert/strict";
import fc from "fast-check";
import { loadModel } from "../../../core/model/load.ts";
import { dummyWeights } from "../../../core/model/dummy.ts";
import { type TensorToWrite, writeSafetensors } from "../../../core/model/safetensors.ts";
import type { ModelConfig, ModelWeights } from "../../../core/model/types.ts";
import { UsageError } from "../../../core/errors.ts";

/** GPT-2's byte-to-character table, which ByteLevel BPE vocabularies are written in. */
function byteChars(): string[] {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const chars = new Array<string>(256);
  for (const b of bs) chars[b] = String.fromCodePoint(b);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (chars[b] === undefined) chars[b] = String.fromCodePoint(256 + n++);
  }
  return chars;
}

/** A small ByteLevel BPE `tokenizer.json`: 2 specials, 256 bytes, 5 merges (263 ids). */
function tokenizerJson(): unknown {
  const vocab: Record<string, number> = { "<s>": 0, "</s>": 1 };
  byteChars().forEach((c, i) => (vocab[c] = i + 2));
  const merges = ["h e", "l l", "he ll", "hell o", "Ġ w"];
  merges.forEach((m, i) => (vocab[m.replace(" ", "")] = 258 + i));
  const special = (id: number, content: string) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  const byteLevel = {
    type: "ByteLevel",
    add_prefix_space: false,
    trim_offsets: true,
    use_regex: true,
  };
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [special(0, "<s>"), special(1, "</s>")],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: null,
    decoder: byteLevel,
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges,
    },
  };
}

const HF_CONFIG = {
  architectures: ["LlamaForCausalLM"],
  model_type: "llama",
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: 263,
  max_position_embeddings: 256,
  rope_theta: 500000,
  rms_norm_eps: 1e-5,
  tie_word_embeddings: false,
  bos_token_id: 0,
  eos_token_id: 1,
  torch_dtype: "float32",
};

const CONFIG: ModelConfig = {
  dim: 32,
  hiddenDim: 48,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  headDim: 8,
  vocabSize: 263,
  maxSeqLen: 256,
  ropeTheta: 500000,
  normEps: 1e-5,
  tieEmbeddings: false,
  bosTokenId: 0,
  eosTokenIds: [1, 7],
};

const TEMPLATE =
  "{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}{{ eos_token }}" +
  "{% endfor %}{% if add_generation_prompt %}[assistant] {% endif %}";

/** Hugging Face tensor names of `w`, in `dtype`. */
function hfTensors(w: ModelWeights, c: ModelConfig, dtype: "F32" | "F16" | "BF16") {
  const t: Record<string, TensorToWrite> = {};
  const put = (
    name: string,
    data: Float32Array,
    shape: number[],
  ) => (t[name] = { dtype, shape, data });
  put("model.embed_tokens.weight", w.tokenEmbedding, [c.vocabSize, c.dim]);
  w.layers.forEach((l, i) => {
    const p = `model.layers.${i}.`;
    const q = c.nHeads * c.headDim, kv = c.nKvHeads * c.headDim;
    put(`${p}input_layernorm.weight`, l.attnNorm, [c.dim]);
    put(`${p}self_attn.q_proj.weight`, l.wq, [q, c.dim]);
    put(`${p}self_attn.k_proj.weight`, l.wk, [kv, c.dim]);
    put(`${p}self_attn.v_proj.weight`, l.wv, [kv, c.dim]);
    put(`${p}self_attn.o_proj.weight`, l.wo, [c.dim, q]);
    put(`${p}post_attention_layernorm.weight`, l.ffnNorm, [c.dim]);
    put(`${p}mlp.gate_proj.weight`, l.w1, [c.hiddenDim, c.dim]);
    put(`${p}mlp.up_proj.weight`, l.w3, [c.hiddenDim, c.dim]);
    put(`${p}mlp.down_proj.weight`, l.w2, [c.dim, c.hiddenDim]);
  });
  put("model.norm.weight", w.finalNorm, [c.dim]);
  put("lm_head.weight", w.lmHead, [c.vocabSize, c.dim]);
  return t;
}

/** Write a complete model folder; `edit` may change the files before they are written. */
async function writeFolder(
  dir: string,
  weights: ModelWeights,
  opts: { dtype?: "F32" | "F16" | "BF16"; sharded?: boolean; config?: Record<string, unknown> } =
    {},
): Promise<void> {
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(opts.config ?? HF_CONFIG));
  await Deno.writeTextFile(
    `${dir}/generation_config.json`,
    JSON.stringify({ eos_token_id: [1, 7] }),
  );
  await Deno.writeTextFile(`${dir}/tokenizer.json`, JSON.stringify(tokenizerJson()));
  await Deno.writeTextFile(
    `${dir}/tokenizer_config.json`,
    JSON.stringify({ bos_token: "<s>", eos_token: { content: "</s>" }, chat_template: TEMPLATE }),
  );
  const tensors = hfTensors(weights, CONFIG, opts.dtype ?? "F32");
  if (!opts.sharded) {
    await writeSafetensors(`${dir}/model.safetensors`, tensors);
    return;
  }
  const names = Object.keys(tensors);
  const half = Math.floor(names.length / 2);
  const shards = [names.slice(0, half), names.slice(half)];
  const weightMap: Record<string, string> = {};
  for (let s = 0; s < 2; s++) {
    const file = `model-0000${s + 1}-of-00002.safetensors`;
    await writeSafetensors(
      `${dir}/${file}`,
      Object.fromEntries(shards[s].map((n) => [n, tensors[n]])),
    );
    for (const n of shards[s]) weightMap[n] = file;
  }
  await Deno.writeTextFile(
    `${dir}/model.safetensors.index.json`,
    JSON.stringify({ metadata: {}, weight_map: weightMap }),
  );
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "baton_hf_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function rejectsUsage(p: Promise<unknown>, ...parts: string[]): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof UsageError, `expected a UsageError, got ${e}`);
    for (const part of parts) assert.ok(e.message.includes(part), e.message);
    return true;
  });
}

function assertClose(a: Float32Array, b: Float32Array, rel: number): void {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) {
    assert.ok(Math.abs(a[i] - b[i]) <= rel * Math.abs(b[i]), `${i}: ${a[i]} vs ${b[i]}`);
  }
}

Deno.test("a Hugging Face folder loads its config, weights and tokenizer", async () => {
  await withDir(async (dir) => {
    const weights = dummyWeights(CONFIG, 9);
    await writeFolder(dir, weights);
    const model = await loadModel(dir);
    assert.deepEqual(model.config, CONFIG);
    assert.equal(model.dtype, "f32");
    assert.equal(model.source, dir);
    assert.equal(model.name, dir.split("/").pop());
    const w = await model.weights();
    assert.equal(await model.weights(), w); // loaded once
    assert.deepEqual(w.tokenEmbedding, weights.tokenEmbedding);
    assert.deepEqual(w.lmHead, weights.lmHead);
    assert.deepEqual(w.layers[1].wk, weights.layers[1].wk);
    assert.deepEqual(w.layers[0].w1, weights.layers[0].w1);
    assert.deepEqual(w.layers[0].w2, weights.layers[0].w2);
    assert.deepEqual(w.layers[0].w3, weights.layers[0].w3);
  });
});

Deno.test("sharded bf16 and f16 folders load to the same values within rounding", async () => {
  for (const dtype of ["BF16", "F16"] as const) {
    await withDir(async (dir) => {
      const weights = dummyWeights(CONFIG, 4);
      await writeFolder(dir, weights, { dtype, sharded: true });
      const model = await loadModel(dir);
      assert.equal(model.dtype, dtype.toLowerCase());
      const w = await model.weights();
      const rel = dtype === "BF16" ? 2 ** -8 : 2 ** -10;
      assertClose(w.layers[1].wo, weights.layers[1].wo, rel);
      assertClose(w.lmHead, weights.lmHead, rel);
      assert.ok(w.finalNorm.every((x) => x === 1));
    });
  }
});

Deno.test("tokenizer.json encodes and decodes round trip, with merges and BOS", async () => {
  await withDir(async (dir) => {
    await writeFolder(dir, dummyWeights(CONFIG, 0));
    const { tokenizer } = await loadModel(dir);
    assert.equal(tokenizer.vocabSize, 263);
    const ids = tokenizer.encode("hello world");
    assert.equal(ids[0], 261); // "hello" merged
    assert.equal(ids[1], 262); // "Ġw"
    assert.equal(ids.length, 6);
    assert.equal(tokenizer.decode(ids), "hello world");
    assert.deepEqual(tokenizer.encode("hello", { addBos: true }), [0, 261]);
    assert.deepEqual(tokenizer.encode("<s>hello", { addBos: true }), [0, 261]); // not doubled
    assert.equal(tokenizer.decode([0, 261, 1]), "hello");
    assert.equal(tokenizer.decode([]), "");
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", maxLength: 40 }), (s) => {
        assert.equal(tokenizer.decode(tokenizer.encode(s)), s);
      }),
      { numRuns: 60 },
    );
  });
});

Deno.test("the chat template renders with bos/eos tokens; chat_template.jinja wins", async () => {
  await withDir(async (dir) => {
    await writeFolder(dir, dummyWeights(CONFIG, 0));
    const messages = [{ role: "system", content: "Be kind." }, { role: "user", content: "Hi" }];
    const m1 = await loadModel(dir);
    assert.equal(
      m1.tokenizer.applyChatTemplate(messages),
      "<s>[system] Be kind.</s>[user] Hi</s>[assistant] ",
    );
    assert.equal(
      m1.tokenizer.applyChatTemplate(messages, { addGenerationPrompt: false }),
      "<s>[system] Be kind.</s>[user] Hi</s>",
    );
    await Deno.writeTextFile(
      `${dir}/chat_template.jinja`,
      "{% for m in messages %}{{ m.role }}:{{ m.content }};{% endfor %}",
    );
    const m2 = await loadModel(dir);
    assert.equal(m2.tokenizer.applyChatTemplate(messages), "system:Be kind.;user:Hi;");
  });
});

Deno.test("a folder can be served with dummy weights", async () => {
  await withDir(async (dir) => {
    await writeFolder(dir, dummyWeights(CONFIG, 0));
    const model = await loadModel(dir, { dummy: true, seed: 3 });
    assert.equal(model.source, "dummy(seed=3)");
    assert.deepEqual((await model.weights()).layers[0].wq, dummyWeights(CONFIG, 3).layers[0].wq);
  });
});

Deno.test("loadModel: presets, missing folders and broken folders", async () => {
  const tiny = await loadModel("tiny", { seed: 2 });
  assert.equal(tiny.name, "tiny");
  assert.equal(tiny.source, "dummy(seed=2)");
  assert.equal(tiny.tokenizer.vocabSize, 259);
  await rejectsUsage(loadModel("/no/such/model"), "/no/such/model", "tiny", "llama2c-110m");
  await withDir(async (dir) => {
    await rejectsUsage(loadModel(dir), "no config.json", "tokenizer.json", "tiny");
    await Deno.writeTextFile(`${dir}/f.txt`, "");
    await rejectsUsage(loadModel(`${dir}/f.txt`), "not a folder");
  });

  await withDir(async (dir) => {
    await writeFolder(dir, dummyWeights(CONFIG, 0));
    await Deno.writeTextFile(
      `${dir}/config.json`,
      JSON.stringify({ ...HF_CONFIG, hidden_size: "x" }),
    );
    await rejectsUsage(loadModel(dir), "hidden_size", "positive integer");

    await Deno.writeTextFile(
      `${dir}/config.json`,
      JSON.stringify({ ...HF_CONFIG, rope_scaling: { rope_type: "llama3", factor: 8 } }),
    );
    await rejectsUsage(loadModel(dir), "rope_scaling", "llama3");

    await Deno.writeTextFile(
      `${dir}/config.json`,
      JSON.stringify({ ...HF_CONFIG, num_hidden_layers: 3 }),
    );
    await rejectsUsage(loadModel(dir), 'missing tensor "model.layers.2.input_layernorm.weight"');

    await Deno.writeTextFile(
      `${dir}/config.json`,
      JSON.stringify({ ...HF_CONFIG, vocab_size: 300 }),
    );
    await rejectsUsage(loadModel(dir), "model.embed_tokens.weight", "expected [300, 32]");

    await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(HF_CONFIG));
    const bytes = await Deno.readFile(`${dir}/model.safetensors`);
    await Deno.writeFile(`${dir}/model.safetensors`, bytes.slice(0, bytes.length - 10));
    await rejectsUsage(loadModel(dir), "truncated");

    await Deno.remove(`${dir}/tokenizer.json`);
    await rejectsUsage(loadModel(dir), "tokenizer.json");
  });

  await withDir(async (dir) => {
    const weights = dummyWeights(CONFIG, 0);
    await writeFolder(dir, weights);
    const tensors = hfTensors(weights, CONFIG, "F32");
    tensors["model.norm.weight"] = { dtype: "F64", shape: [32], bytes: new Uint8Array(256) };
    await writeSafetensors(`${dir}/model.safetensors`, tensors);
    await rejectsUsage(loadModel(dir), "unsupported dtype F64", "F32, F16, BF16");
  });
});
