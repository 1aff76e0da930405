/**
 * The admin API's view of the engine's plugins: what fills each slot now, what could, and
 * a validated swap. `PUT /admin/plugins/{slot}` checks the options against the plugin's
 * zod schema, then the engine switches at its next iteration boundary while streams in
 * flight go on (DESIGN.md, "Swap in two phases").
 *
 * @module
 */

import { UsageError } from "../core/errors.ts";
import type { Registry } from "../plugins/registry.ts";
import { camel, optionsJsonSchema, parseOptions } from "../plugins/options.ts";
import type { ActivePlugin, ServingEngine } from "./engine_port.ts";

/** Plugin management behind `/admin/plugins`. */
export interface AdminBackend {
  /** Each slot's active plugin. */
  list(): Record<string, ActivePlugin>;
  /** Each slot's plugins with description and options (JSON schema). */
  available(): Record<string, { name: string; description: string; options: unknown }[]>;
  /** Whether `slot` exists. */
  hasSlot(slot: string): boolean;
  /** Validate and swap; resolves with the new active plugin. UsageError on bad input. */
  swap(slot: string, name: string, options: Record<string, unknown>): Promise<ActivePlugin>;
}

/**
 * An admin backend over the engine and its registry. Swaps are serialized; a slot whose
 * swap is pending shows the incoming plugin under `pending`.
 */
export function registryAdmin(engine: ServingEngine, registry: Registry): AdminBackend {
  let queue: Promise<unknown> = Promise.resolve();
  return {
    list: () => {
      const out: Record<string, ActivePlugin> = {};
      for (const p of engine.plugins()) {
        const entry: ActivePlugin = {
          name: p.name,
          options: (p.options ?? {}) as Record<string, unknown>,
        };
        const pending = (p as { pending?: { name: string; options: unknown } }).pending;
        if (pending) {
          entry.pending = {
            name: pending.name,
            options: (pending.options ?? {}) as Record<string, unknown>,
          };
        }
        out[p.slot] = structuredClone(entry);
      }
      return out;
    },
    available: () => {
      const out: Record<string, { name: string; description: string; options: unknown }[]> = {};
      for (const slot of registry.slotNames()) {
        out[slot] = registry.plugins(slot).map((p) => ({
          name: p.name,
          description: p.description,
          options: optionsJsonSchema(p.options),
        }));
      }
      return out;
    },
    hasSlot: (slot) => registry.slotNames().includes(slot),
    swap: (slot, name, raw) => {
      const run = async () => {
        const plugin = registry.get(slot, name);
        const given: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(raw)) given[camel(k)] = v;
        const options = parseOptions(plugin, given) as Record<string, unknown>;
        await engine.swap(slot, name, given);
        return { name, options };
      };
      const p = queue.then(run, run);
      queue = p.catch(() => {});
      return p;
    },
  };
}

/** Check a PUT body: `{name: string, options?: object}`. */
export function parseSwapBody(body: unknown): { name: string; options: Record<string, unknown> } {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new UsageError('The body must be a JSON object: {"name": "<plugin>", "options": {...}}.');
  }
  const b = body as Record<string, unknown>;
  if (typeof b.name !== "string" || b.name === "") {
    throw new UsageError("'name' must be the plugin's name (a non-empty string).", "name");
  }
  const options = b.options ?? {};
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new UsageError("'options' must be a JSON object of the plugin's options.", "options");
  }
  return { name: b.name, options: options as Record<string, unknown> };
}
