/**
 * Loading third-party plugins from a module: a path, a `file:`/`https:` URL, or a
 * `jsr:`/`npm:` specifier. The module's default export (a plugin or a list of plugins)
 * and every named export that is a plugin are registered.
 *
 * Deno cannot unload a module, so a reload imports the file again under a fresh URL.
 *
 * @module
 */

import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { UsageError } from "../core/errors.ts";
import type { Plugin } from "./define.ts";
import type { Registry } from "./registry.ts";

function isPlugin(x: unknown): x is Plugin {
  const p = x as Partial<Plugin>;
  return !!p && typeof p === "object" && typeof p.name === "string" &&
    typeof p.slot === "string" && typeof p.create === "function";
}

/** The module URL for a plugin spec (relative paths resolve against the working directory). */
export function pluginModuleUrl(spec: string, fresh = false): string {
  const isUrl = /^(file|https?|jsr|npm|data):/.test(spec);
  const url = isUrl ? spec : pathToFileURL(resolve(Deno.cwd(), spec)).href;
  return fresh && url.startsWith("file:") ? `${url}?v=${Date.now()}` : url;
}

/**
 * Import a plugin module and register what it exports into `registry`; returns the
 * plugins found. `fresh` imports a changed file again (a reload).
 */
export async function loadPluginModule(
  spec: string,
  registry: Registry,
  options: { fresh?: boolean } = {},
): Promise<Plugin[]> {
  const url = pluginModuleUrl(spec, options.fresh);
  let mod: Record<string, unknown>;
  try {
    mod = await import(url);
  } catch (e) {
    const msg = (e as Error).message.split("\n")[0];
    throw new UsageError(`cannot load plugin module ${spec}: ${msg}`, "--plugin");
  }
  const found: Plugin[] = [];
  const add = (x: unknown) => {
    if (isPlugin(x) && !found.includes(x)) found.push(x);
  };
  const def = mod.default;
  if (Array.isArray(def)) def.forEach(add);
  else add(def);
  for (const [k, v] of Object.entries(mod)) if (k !== "default") add(v);
  if (found.length === 0) {
    throw new UsageError(
      `plugin module ${spec} exports no plugin; export one made with definePlugin()`,
      "--plugin",
    );
  }
  for (const p of found) registry.register(p, { replace: options.fresh });
  return found;
}
