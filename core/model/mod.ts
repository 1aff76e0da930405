/**
 * Models: presets, loaders (Hugging Face folders, dummy weights), tokenizers and size
 * arithmetic.
 *
 * @module
 */

export type * from "./types.ts";
export { loadModel, type LoadModelOptions, presetModel } from "./load.ts";
export { PRESET_NAMES, presetConfig, PRESETS } from "./presets.ts";
export { BOS_ID, BYTE_VOCAB_SIZE, ByteTokenizer, EOS_ID } from "./byte_tokenizer.ts";
export { dummyWeights } from "./dummy.ts";
export { type HfLoadOptions, loadHfModel, parseHfConfig } from "./hf.ts";
export { HfTokenizer } from "./hf_tokenizer.ts";
export {
  encodeSafetensors,
  type SafetensorsDtype,
  SafetensorsFile,
  SafetensorsFolder,
  SUPPORTED_DTYPES,
  type TensorInfo,
  type TensorToWrite,
  writeSafetensors,
} from "./safetensors.ts";
export { kvBytesPerToken, parameterCount } from "./size.ts";
