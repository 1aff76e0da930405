/**
 * The engine's command-line flags and config files, shared by every command that builds
 * an engine (generate, serve, simulate, ...): `--model`, engine sizes, `--config
 * file.json`, `--plugin module`, and per slot `--<slot> NAME --<slot>.<option> VALUE`,
 * all checked against the plugins' schemas before anything heavy happens.
 *
 * Config file format (policy files for `compare` use the same):
 * ```json
 * { "model": "tiny", "seed": 1, "numBlocks": 1024, "plugins": ["./my_plugin.ts"],
 *   "scheduler": "fcfs", "batcher": { "name": "vllm", "options": { "maxNumSeqs": 64 } } }
 * ```
 *
 * @module
 */

import { UsageError } from "../core/errors.ts";
import { Engine, type EngineOptions, type SlotChoice } from "../core/engine.ts";
import { loadModel } from "../core/model/load.ts";
import { hasHardwareAdapter } from "../kernels/webgpu/device.ts";
import type { Model } from "../core/model/types.ts";
import { builtinRegistry } from "../plugins/builtins.ts";
import { loadPluginModule } from "../plugins/loader.ts";
import {
  camel,
  coerceFlagValue,
  kebab,
  optionsHelp,
  optionsJsonSchema,
  parseOptions,
} from "../plugins/options.ts";
import type { Registry } from "../plugins/registry.ts";
import { flagsHelp, type FlagSpecs, type ParsedFlags, parseFlags } from "./flags.ts";

/** Flags every engine-building command accepts. */
export const ENGINE_FLAGS: FlagSpecs = {
  model: {
    type: "string",
    description: "a preset (tiny, small, ...) or a Hugging Face model folder",
    default: "small",
  },
  config: {
    type: "string",
    description: "JSON file with model, engine sizes and plugins per slot",
  },
  plugin: {
    type: "list",
    description: "load plugins from a module (path, URL, jsr: or npm:); repeatable",
  },
  seed: {
    type: "int",
    description: "seed for weights, request seeds and plugins",
    default: 0,
    min: 0,
    max: 2 ** 31 - 1,
  },
  "block-size": { type: "int", description: "tokens per KV block", min: 1, max: 1024 },
  "num-blocks": { type: "int", description: "KV pool size in blocks", min: 2 },
  "max-model-len": { type: "int", description: "longest context (prompt + output)", min: 2 },
  "max-batch-tokens": { type: "int", description: "hard cap on tokens per step", min: 1 },
  "max-batch-seqs": { type: "int", description: "hard cap on requests per step", min: 1 },
  preemption: {
    type: "string",
    description: "what preemption does with KV: recompute it later, or swap it to host memory",
    choices: ["recompute", "swap"],
  },
  "swap-blocks": {
    type: "int",
    description: "host swap space in KV blocks (default: 4 GiB of f16 KV)",
    min: 0,
  },
  "host-cache-blocks": {
    type: "int",
    description: "host-memory tier of the prefix cache, in KV blocks (CPU offload; default 0)",
    min: 0,
  },
};

const CONFIG_ENGINE_KEYS = [
  "model",
  "seed",
  "blockSize",
  "numBlocks",
  "maxModelLen",
  "maxBatchTokens",
  "maxBatchSeqs",
  "preemption",
  "swapBlocks",
  "hostCacheBlocks",
  "plugins",
] as const;

/** What an engine needs, parsed and checked, before the model is loaded. */
export interface EngineSetup {
  /** Model preset or folder. */
  modelSpec: string;
  /** The registry with third-party plugins added. */
  registry: Registry;
  /** Engine options except the model. */
  options: Omit<EngineOptions, "model">;
}

/** A parsed command line: the command's own flags plus the engine setup. */
export interface ParsedCommand extends ParsedFlags {
  /** The engine setup. */
  setup: EngineSetup;
}

/** Parse a command line holding engine flags and the command's own `specs`. */
export async function parseEngineCommand(
  argv: string[],
  specs: FlagSpecs,
  registry?: Registry,
): Promise<ParsedCommand> {
  const reg = registry ?? builtinRegistry();
  const parsed = parseFlags(argv, { ...ENGINE_FLAGS, ...specs }, reg.slotNames());
  const file = parsed.values.config ? await readConfigFile(parsed.values.config as string) : {};
  const pluginSpecs = [
    ...((file.plugins as string[] | undefined) ?? []),
    ...((parsed.values.plugin as string[] | undefined) ?? []),
  ];
  for (const spec of pluginSpecs) await loadPluginModule(spec, reg);
  // Slot flags may name plugins that --plugin just registered: check them now.
  for (const slot of parsed.slots.keys()) reg.slot(slot);
  const plugins = policyChoices(file, reg);
  for (const [slot, flags] of parsed.slots) {
    const base = plugins[slot];
    const name = flags.name ?? base?.name ?? reg.slot(slot).defaultPlugin;
    const plugin = reg.get(slot, name);
    const props = optionsJsonSchema(plugin.options);
    const fromFlags: Record<string, unknown> = {};
    for (const [k, raw] of Object.entries(flags.options)) {
      fromFlags[camel(k)] = coerceFlagValue(raw, props[camel(k)]);
    }
    const options = { ...(base?.name === name ? base.options : {}), ...fromFlags };
    parseOptions(plugin, options);
    plugins[slot] = { name, options };
  }
  const pick = <T>(flag: string, key: string): T | undefined =>
    parsed.given.has(flag)
      ? parsed.values[flag] as T
      : (file[key] as T | undefined) ?? (parsed.values[flag] as T | undefined);
  const setup: EngineSetup = {
    modelSpec: pick<string>("model", "model")!,
    registry: reg,
    options: {
      plugins,
      registry: reg,
      seed: pick<number>("seed", "seed"),
      blockSize: pick<number>("block-size", "blockSize"),
      numBlocks: pick<number>("num-blocks", "numBlocks"),
      maxModelLen: pick<number>("max-model-len", "maxModelLen"),
      maxBatchTokens: pick<number>("max-batch-tokens", "maxBatchTokens"),
      maxBatchSeqs: pick<number>("max-batch-seqs", "maxBatchSeqs"),
      preemption: pick<"recompute" | "swap">("preemption", "preemption"),
      swapBlocks: pick<number>("swap-blocks", "swapBlocks"),
      hostCacheBlocks: pick<number>("host-cache-blocks", "hostCacheBlocks"),
    },
  };
  return { ...parsed, setup };
}

/** Read and check a config or policy file. */
export async function readConfigFile(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new UsageError(`cannot read config file ${path}: ${(e as Error).message}`, "--config");
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new UsageError(
      `config file ${path} is not valid JSON: ${(e as Error).message}`,
      "--config",
    );
  }
  if (!json || typeof json !== "object" || Array.isArray(json)) {
    throw new UsageError(`config file ${path} must hold a JSON object`, "--config");
  }
  return json as Record<string, unknown>;
}

/**
 * Slot choices from a config or policy object: each slot key is a plugin name or
 * `{ name, options }`; other keys must be engine keys. Checked against the registry.
 */
export function policyChoices(
  file: Record<string, unknown>,
  registry: Registry,
): Record<string, SlotChoice> {
  const out: Record<string, SlotChoice> = {};
  const slots = registry.slotNames();
  for (const [key, value] of Object.entries(file)) {
    if (
      (CONFIG_ENGINE_KEYS as readonly string[]).includes(key) || key === "name" ||
      key === "description"
    ) continue;
    if (!slots.includes(key)) {
      throw new UsageError(
        `unknown config key "${key}"; allowed: ${[...slots, ...CONFIG_ENGINE_KEYS].join(", ")}`,
        "--config",
      );
    }
    const choice: SlotChoice = typeof value === "string"
      ? { name: value }
      : value && typeof value === "object" && typeof (value as SlotChoice).name === "string"
      ? { name: (value as SlotChoice).name, options: (value as SlotChoice).options ?? {} }
      : (() => {
        throw new UsageError(
          `config key "${key}" must be a plugin name or { "name": ..., "options": {...} }`,
          "--config",
        );
      })();
    parseOptions(registry.get(key, choice.name), choice.options ?? {});
    out[key] = choice;
  }
  return out;
}

/**
 * The executor when none is chosen: `webgpu` on a real (non-fallback) GPU adapter, else
 * `wasm` (the CPU executor people run), else the slot's default.
 */
export async function defaultExecutor(registry: Registry): Promise<string> {
  // Mesa's software Vulkan driver complains on stderr when this is unset; probing must be quiet.
  if (!Deno.env.get("XDG_RUNTIME_DIR")) Deno.env.set("XDG_RUNTIME_DIR", Deno.makeTempDirSync());
  if (registry.has("executor", "webgpu") && await hasHardwareAdapter()) return "webgpu";
  if (registry.has("executor", "wasm")) return "wasm";
  return registry.slot("executor").defaultPlugin;
}

/** Load the model and build the engine from a parsed setup. */
export async function createEngine(
  setup: EngineSetup,
  overrides: Partial<EngineOptions> = {},
): Promise<{ engine: Engine; model: Model }> {
  const model = await loadModel(setup.modelSpec, { seed: setup.options.seed ?? 0 });
  const plugins = { ...setup.options.plugins, ...overrides.plugins };
  plugins.executor ??= { name: await defaultExecutor(setup.registry) };
  const engine = await Engine.create({
    ...setup.options,
    ...stripUndefined(overrides),
    plugins,
    model,
  });
  return { engine, model };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Help text for the engine flags and every slot, plugin and option in `registry`. */
export function engineHelp(registry: Registry): string {
  const lines = [
    "Engine flags:",
    ...flagsHelp(ENGINE_FLAGS),
    "",
    "Plugin slots (choose with --<slot> NAME, set options with --<slot>.<option> VALUE):",
  ];
  for (const slot of registry.slotNames()) {
    const spec = registry.slot(slot);
    lines.push("", `  ${slot}: ${spec.description} (default ${spec.defaultPlugin})`);
    for (const p of registry.plugins(slot)) {
      lines.push(`    ${p.name}${p.description ? ` - ${p.description}` : ""}`);
      for (const o of optionsHelp(p)) lines.push(`        ${o}`);
    }
  }
  return lines.join("\n");
}

export { kebab };
