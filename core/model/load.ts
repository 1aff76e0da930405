/**
 * `loadModel(spec)`: a preset name (dummy weights, byte tokenizer) or the path of a
 * Hugging Face model folder.
 *
 * @module
 */

import { UsageError } from "../errors.ts";
import { ByteTokenizer } from "./byte_tokenizer.ts";
import { dummyWeights } from "./dummy.ts";
import { loadHfModel } from "./hf.ts";
import { PRESET_NAMES, presetConfig } from "./presets.ts";
import type { Model, ModelWeights } from "./types.ts";

/** Options of {@link loadModel}. */
export interface LoadModelOptions {
  /** Seed of dummy weights (presets, or a folder with `dummy: true`); default 0. */
  seed?: number;
  /** For a folder: its config and tokenizer with seeded dummy weights instead of its own. */
  dummy?: boolean;
}

/** A preset model: dummy weights made on the first `weights()` call, byte tokenizer. */
export function presetModel(name: string, seed = 0): Model {
  const config = presetConfig(name);
  if (!config) {
    throw new UsageError(
      `unknown model preset "${name}"; presets: ${PRESET_NAMES.join(", ")}`,
      "model",
    );
  }
  let cached: ModelWeights | undefined;
  return {
    name,
    config,
    tokenizer: new ByteTokenizer(config.vocabSize),
    source: `dummy(seed=${seed})`,
    dtype: "f32",
    weights: () => Promise.resolve(cached ??= dummyWeights(config, seed)),
  };
}

/**
 * Load `spec`: a preset name, or a folder holding `config.json`, safetensors weights and
 * `tokenizer.json`. Weights are loaded lazily, once, by `model.weights()`.
 */
export async function loadModel(spec: string, options: LoadModelOptions = {}): Promise<Model> {
  if (presetConfig(spec)) return presetModel(spec, options.seed ?? 0);
  let stat: Deno.FileInfo;
  try {
    stat = await Deno.stat(spec);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new UsageError(
        `model "${spec}" is neither a preset nor an existing folder; presets: ${
          PRESET_NAMES.join(", ")
        }`,
        "model",
      );
    }
    throw e;
  }
  if (!stat.isDirectory) {
    throw new UsageError(
      `model "${spec}" is not a folder; give a Hugging Face model folder or a preset (${
        PRESET_NAMES.join(", ")
      })`,
      "model",
    );
  }
  try {
    await Deno.stat(`${spec}/config.json`);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    throw new UsageError(
      `folder "${spec}" has no config.json; a model folder holds config.json, *.safetensors ` +
        `and tokenizer.json (or use a preset: ${PRESET_NAMES.join(", ")})`,
      "model",
    );
  }
  return await loadHfModel(spec, { dummy: options.dummy, seed: options.seed });
}
