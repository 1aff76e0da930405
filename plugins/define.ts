/**
 * `definePlugin`: a plugin is a plain object naming its slot, its options as a zod
 * schema, and a `create` function returning the slot's implementation.
 *
 * @example
 * ```ts
 * import { z } from "npm:zod@4.6.7";
 * import { definePlugin } from "@baton/baton";
 *
 * export default definePlugin({
 *   name: "newest-first",
 *   slot: "scheduler",
 *   description: "Serve the most recent arrival first.",
 *   options: z.object({}),
 *   create: () => ({
 *     order: (view) => ({
 *       running: view.running,
 *       waiting: [...view.waiting].sort((a, b) => b.arrivalTime - a.arrivalTime),
 *     }),
 *   }),
 * });
 * ```
 *
 * @module
 */

// Plugins import zod themselves (`import { z } from "zod"`); it is not re-exported here,
// so the public API stays free of zod's type names.
import { z } from "zod";
import type { PluginContext, SlotTypes } from "../core/slots.ts";

/**
 * A plugin's options schema: any zod 4 object schema (`z.object({...})`). Described
 * structurally so the public API does not depend on zod's type names.
 */
export interface OptionsSchema {
  /** zod's internals; `output` carries the parsed options type. */
  readonly _zod: { readonly output: unknown };
  /** Validate raw options, filling in defaults. */
  safeParse(data: unknown): OptionsParseResult;
}

/** What {@link OptionsSchema.safeParse} returns. */
export type OptionsParseResult =
  | { success: true; data: unknown }
  | { success: false; error: { issues: readonly { path: PropertyKey[]; message: string }[] } };

/** The parsed options of schema `O`. */
export type OptionsOf<O extends OptionsSchema> = O["_zod"]["output"];

/** The implementation type of slot `S` (unknown for slots registered later). */
export type SlotImpl<S extends string> = S extends keyof SlotTypes ? SlotTypes[S] : unknown;

/** A plugin for slot `S` with options schema `O`. */
export interface Plugin<S extends string = string, O extends OptionsSchema = OptionsSchema> {
  /** Unique within its slot; used on the command line (`--scheduler NAME`). */
  readonly name: string;
  /** The slot it fills. */
  readonly slot: S;
  /** Version of the slot interface it implements (the slot's `apiVersion`). */
  readonly apiVersion: number;
  /** One line for `--help`. */
  readonly description: string;
  /** Options, with defaults; CLI flags, config files and the admin API derive from it. */
  readonly options: O;
  /** Build the implementation (may be async: loading weights, compiling kernels). */
  create(options: OptionsOf<O>, ctx: PluginContext): SlotImpl<S> | Promise<SlotImpl<S>>;
}

/** Plugin fields that may be left out of `definePlugin`. */
export interface PluginInput<S extends string, O extends OptionsSchema>
  extends Omit<Plugin<S, O>, "apiVersion" | "options" | "description"> {
  /** Defaults to 1. */
  apiVersion?: number;
  /** Defaults to no options. */
  options?: O;
  /** Defaults to the empty string. */
  description?: string;
}

/** Declare a plugin; fills in defaults and checks the obvious mistakes early. */
export function definePlugin<S extends string, O extends OptionsSchema = OptionsSchema>(
  input: PluginInput<S, O>,
): Plugin<S, O> {
  if (!/^[a-z][a-z0-9-]*$/.test(input.name)) {
    throw new Error(
      `plugin name "${input.name}" is not allowed: use lower-case letters, digits and dashes`,
    );
  }
  if (typeof input.create !== "function") {
    throw new Error(`plugin "${input.name}" has no create(options, ctx) function`);
  }
  return {
    apiVersion: 1,
    description: "",
    ...input,
    options: (input.options ?? z.object({})) as O,
  };
}
