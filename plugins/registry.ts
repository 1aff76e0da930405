/**
 * The plugin registry: which slots exist and which plugins fill each. Slots are
 * registered, not hard-coded, so new ones (router, speculation) join without changes here.
 *
 * @module
 */

import { UsageError } from "../core/errors.ts";
import type { Plugin } from "./define.ts";

/** A slot: its interface version and the plugin used when none is chosen. */
export interface SlotSpec {
  /** Slot name, e.g. "scheduler". */
  readonly name: string;
  /** Version of the slot's interface; plugins must declare the same. */
  readonly apiVersion: number;
  /** The plugin used by default and as the fallback when the chosen one fails. */
  readonly defaultPlugin: string;
  /** One line for `--help`. */
  readonly description: string;
}

/** Slots and their plugins. */
export class Registry {
  readonly #slots = new Map<string, SlotSpec>();
  readonly #plugins = new Map<string, Map<string, Plugin>>();

  /** Add a slot. */
  defineSlot(spec: SlotSpec): this {
    if (this.#slots.has(spec.name)) throw new Error(`slot "${spec.name}" is already defined`);
    this.#slots.set(spec.name, spec);
    this.#plugins.set(spec.name, new Map());
    return this;
  }

  /** Add a plugin (replacing one of the same name in its slot when `replace` is true). */
  register(plugin: Plugin, options: { replace?: boolean } = {}): this {
    const slot = this.#slots.get(plugin.slot);
    if (!slot) {
      throw new UsageError(
        `plugin "${plugin.name}" fills slot "${plugin.slot}", which does not exist; slots: ${
          this.slotNames().join(", ")
        }`,
      );
    }
    if (plugin.apiVersion !== slot.apiVersion) {
      throw new UsageError(
        `plugin "${plugin.name}" implements ${slot.name} API version ${plugin.apiVersion}, ` +
          `but this engine offers version ${slot.apiVersion}`,
      );
    }
    const plugins = this.#plugins.get(slot.name)!;
    if (plugins.has(plugin.name) && !options.replace) {
      throw new UsageError(`a ${slot.name} plugin named "${plugin.name}" is already registered`);
    }
    plugins.set(plugin.name, plugin);
    return this;
  }

  /** Slot names in definition order. */
  slotNames(): string[] {
    return [...this.#slots.keys()];
  }

  /** A slot's spec; UsageError listing the slots when unknown. */
  slot(name: string): SlotSpec {
    const s = this.#slots.get(name);
    if (!s) {
      throw new UsageError(`unknown slot "${name}"; slots: ${this.slotNames().join(", ")}`);
    }
    return s;
  }

  /** Plugins of a slot, in registration order. */
  plugins(slot: string): Plugin[] {
    this.slot(slot);
    return [...this.#plugins.get(slot)!.values()];
  }

  /** A plugin by slot and name; UsageError listing the allowed names when unknown. */
  get(slot: string, name: string): Plugin {
    this.slot(slot);
    const p = this.#plugins.get(slot)!.get(name);
    if (!p) {
      const names = [...this.#plugins.get(slot)!.keys()].join(", ");
      throw new UsageError(`unknown ${slot} plugin "${name}"; allowed: ${names}`, `--${slot}`);
    }
    return p;
  }

  /** Whether a plugin exists. */
  has(slot: string, name: string): boolean {
    return this.#plugins.get(slot)?.has(name) ?? false;
  }

  /** An independent copy (so loading a third-party plugin leaves the original alone). */
  clone(): Registry {
    const r = new Registry();
    for (const s of this.#slots.values()) r.defineSlot(s);
    for (const [, ps] of this.#plugins) for (const p of ps.values()) r.register(p);
    return r;
  }
}
