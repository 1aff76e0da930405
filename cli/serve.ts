/**
 * `serve`: the OpenAI-compatible HTTP server on any engine configuration
 * (`--model`, `--executor sim --executor.realtime true`, policy flags, `--config`).
 *
 * Signals: SIGINT/SIGTERM shut down gracefully (a second one aborts what is left);
 * SIGHUP reloads `--config` and swaps the plugins that changed.
 *
 * @module
 */

import type { Engine } from "../core/engine.ts";
import {
  createEngine,
  engineHelp,
  parseEngineCommand,
  policyChoices,
  readConfigFile,
} from "./engine_flags.ts";
import { flagsHelp, type FlagSpecs } from "./flags.ts";
import { serveEngine } from "../server/mod.ts";
import { builtinRegistry } from "../plugins/builtins.ts";
import type { Registry } from "../plugins/registry.ts";
import { parseOptions } from "../plugins/options.ts";

/** Flags of `serve` (besides the engine flags). */
export const SERVE_FLAGS: FlagSpecs = {
  host: {
    type: "string",
    description: "interface to bind (0.0.0.0 for every interface)",
    default: "127.0.0.1",
  },
  port: {
    type: "int",
    description: "TCP port (0 picks a free one)",
    default: 8000,
    min: 0,
    max: 65535,
  },
  "api-key": { type: "string", description: "Bearer key required on /v1 (open when absent)" },
  "admin-key": { type: "string", description: "Bearer key for /admin (admin is off when absent)" },
  "max-waiting": { type: "int", description: "waiting requests before new ones get 429", min: 0 },
  "max-body-bytes": {
    type: "int",
    description: "largest request body",
    default: 4 * 1024 * 1024,
    min: 1024,
  },
  "served-model-name": { type: "list", description: "extra model names accepted in requests" },
  "shutdown-timeout": {
    type: "number",
    description: "seconds to let requests finish on shutdown before aborting them",
    default: 30,
    min: 0,
  },
};

/** Help text of `serve`. */
export function help(): string {
  return [
    "Usage: deno run -A main.ts serve [flags]",
    "",
    "Serve flags:",
    ...flagsHelp(SERVE_FLAGS),
    "",
    engineHelp(builtinRegistry()),
  ].join("\n");
}

/** Run `serve` until a signal; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const cmd = await parseEngineCommand(args, SERVE_FLAGS);
  const v = cmd.values;
  const { engine, model } = await createEngine(cmd.setup);
  const log = (line: string) => console.error(`[serve] ${line}`);
  const server = await serveEngine(engine, {
    host: v.host as string,
    port: v.port as number,
    apiKey: v["api-key"] as string | undefined,
    adminKey: v["admin-key"] as string | undefined,
    maxWaiting: v["max-waiting"] as number | undefined,
    maxBodyBytes: v["max-body-bytes"] as number,
    servedModelNames: v["served-model-name"] as string[] | undefined,
    shutdownGraceSeconds: v["shutdown-timeout"] as number,
    log,
  });
  let signals = 0;
  const stop = () => {
    signals++;
    if (signals === 1) {
      log("shutting down: finishing requests in flight (signal again to abort them)");
      server.shutdown().catch((e) => log(`shutdown failed: ${e}`));
    } else {
      log("aborting requests in flight");
      server.app.abortAll();
    }
  };
  const reload = () => {
    const path = v.config as string | undefined;
    if (path === undefined) {
      log("SIGHUP: no --config to reload");
      return;
    }
    reloadConfig(engine, cmd.setup.registry, path).then(
      (changed) =>
        log(
          `SIGHUP: reloaded ${path}; ${
            changed.length ? `swapped ${changed.join(", ")}` : "nothing changed"
          }`,
        ),
      (e) => log(`SIGHUP: kept the running plugins: ${(e as Error).message}`),
    );
  };
  const listeners: [Deno.Signal, () => void][] = [["SIGINT", stop], ["SIGTERM", stop], [
    "SIGHUP",
    reload,
  ]];
  for (const [sig, fn] of listeners) {
    try {
      Deno.addSignalListener(sig, fn);
    } catch {
      // Not every platform has every signal (SIGHUP on Windows).
    }
  }
  // Announce only now: a signal sent on seeing this line finds its listener installed (before,
  // a quick SIGHUP could still take its default action and end the process).
  const slots = engine.plugins().map((p) => `${p.slot}=${p.name}`).join(" ");
  log(`serving ${model.name} on ${server.url} (${slots})`);
  if (v["api-key"] === undefined) {
    log("no --api-key: /v1 is open to anyone who can reach this address");
  }
  await server.finished;
  await server.shutdown();
  await engine.close();
  // The signal listeners stay until the process exits: removing them here would let a signal
  // still in flight take its default action (a late SIGHUP kills the process with code 129).
  log("stopped");
  return 0;
}

/**
 * Read the config file again and swap each slot whose plugin or options changed. All
 * choices are validated before any swap; returns the slots swapped.
 */
export async function reloadConfig(
  engine: Engine,
  registry: Registry,
  path: string,
): Promise<string[]> {
  const file = await readConfigFile(path);
  const wanted = policyChoices(file, registry);
  const current = new Map(engine.plugins().map((p) => [p.slot, p]));
  const changed: string[] = [];
  for (const [slot, choice] of Object.entries(wanted)) {
    const now = current.get(slot);
    const options = choice.options ?? {};
    const resolved = parseOptions(registry.get(slot, choice.name), options);
    if (
      now && now.name === choice.name && JSON.stringify(now.options) === JSON.stringify(resolved)
    ) continue;
    await engine.swap(slot, choice.name, options);
    changed.push(`${slot}=${choice.name}`);
  }
  return changed;
}
