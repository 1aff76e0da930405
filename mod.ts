/**
 * Baton: a plugin framework for LLM-serving scheduling policies.
 *
 * One engine runs a real Llama-family transformer or a simulated GPU on a virtual clock;
 * every scheduling decision (order, admission, batching, KV eviction, execution) is a
 * plugin in a slot, swappable between two iterations.
 *
 * @example
 * ```ts
 * import { Engine, loadModel } from "@baton/baton";
 *
 * const model = await loadModel("tiny");
 * const engine = await Engine.create({ model, plugins: { batcher: { name: "vllm" } } });
 * engine.run();
 * for await (const ev of engine.submit({ prompt: "hello", sampling: { maxTokens: 8 } })) {
 *   if (ev.type === "token") console.log(ev.text);
 * }
 * await engine.close();
 * ```
 *
 * @module
 */

export * from "./core/types.ts";
export type * from "./core/slots.ts";
export type * from "./core/model/types.ts";
export {
  type DecisionStats,
  Engine,
  type EngineOptions,
  type EngineStats,
  type SlotChoice,
  type StepReport,
} from "./core/engine.ts";
export { type AdmitFn, PlanBuilder, wholePromptBudget } from "./core/plan_builder.ts";
export { DEFAULT_SAMPLING } from "./core/request_input.ts";
export { type BlockChain, blockHash, BlockPool } from "./core/block_pool.ts";
export { type Clock, VirtualClock, WallClock } from "./core/clock.ts";
export { PluginError, UsageError } from "./core/errors.ts";
export { sampleToken, sampleTopK, uniform } from "./core/sampling.ts";
export { loadModel, type LoadModelOptions, presetModel } from "./core/model/load.ts";
export { PRESET_NAMES, presetConfig } from "./core/model/presets.ts";
export { ByteTokenizer } from "./core/model/byte_tokenizer.ts";
export { HfTokenizer } from "./core/model/hf_tokenizer.ts";
export {
  encodeSafetensors,
  type SafetensorsDtype,
  SafetensorsFile,
  type TensorInfo,
  type TensorToWrite,
  writeSafetensors,
} from "./core/model/safetensors.ts";
export { kvBytesPerToken, parameterCount } from "./core/model/size.ts";
export { naiveGreedy, naiveLogits } from "./kernels/reference/naive.ts";
export {
  definePlugin,
  type OptionsOf,
  type OptionsParseResult,
  type OptionsSchema,
  type Plugin,
  type PluginInput,
  type SlotImpl,
} from "./plugins/define.ts";
export type { RequestListener } from "./core/request.ts";
export { Registry, type SlotSpec } from "./plugins/registry.ts";
export { BUILTIN_PLUGINS, BUILTIN_SLOTS, builtinRegistry } from "./plugins/builtins.ts";
export { loadPluginModule } from "./plugins/loader.ts";
export { parseOptions } from "./plugins/options.ts";
export * from "./server/mod.ts";
