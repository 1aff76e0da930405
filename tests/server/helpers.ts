/**
 * Test helpers: a real engine on the `tiny` preset behind a server on a free port, shut
 * down at the end of each test.
 *
 * @module
 */

import { z } from "zod";
import { Engine, type EngineOptions } from "../../core/engine.ts";
import { presetModel } from "../../core/model/load.ts";
import type { Executor } from "../../core/slots.ts";
import { builtinRegistry } from "../../plugins/builtins.ts";
import { definePlugin, type Plugin } from "../../plugins/define.ts";
import { parseOptions } from "../../plugins/options.ts";
import { referenceExecutor } from "../../kernels/reference/plugin.ts";
import { type BatonServer, type EngineServerOptions, serveEngine } from "../../server/mod.ts";

/** A running test server and its engine. */
export interface TestServer {
  /** The server. */
  server: BatonServer;
  /** The engine behind it. */
  engine: Engine;
  /** Base URL. */
  url: string;
}

/**
 * The reference executor with a floor on each step's wall time, so that tests which must
 * act while streams are still running (swaps, a full queue, shutdown) do not race a tiny
 * model that finishes in a few milliseconds. Tokens are the reference's.
 */
export const pacedExecutor: Plugin<"executor"> = definePlugin({
  name: "paced",
  slot: "executor",
  options: z.object({ ms: z.number().min(0).default(4) }),
  create: async (opts, ctx): Promise<Executor> => {
    const inner = await referenceExecutor.create(parseOptions(referenceExecutor, {}) as never, ctx);
    return {
      simulated: false,
      async run(batch) {
        await new Promise((r) => setTimeout(r, (opts as { ms: number }).ms));
        return inner.run(batch);
      },
    };
  },
});

/** Run `fn` against a fresh server; always shuts it down and closes the engine. */
export async function withServer(
  options: EngineServerOptions & { engine?: Partial<EngineOptions> },
  fn: (t: TestServer) => Promise<void>,
): Promise<void> {
  const { engine: engineOptions, ...serverOptions } = options;
  const registry = engineOptions?.registry ?? builtinRegistry();
  if (!registry.has("executor", "paced")) registry.register(pacedExecutor);
  const engine = await Engine.create({
    model: presetModel("tiny"),
    log: () => {},
    ...engineOptions,
    registry,
    plugins: { executor: { name: "paced" }, ...engineOptions?.plugins },
  });
  const server = await serveEngine(engine, { port: 0, log: () => {}, ...serverOptions });
  try {
    await fn({ server, engine, url: server.url });
  } finally {
    await server.shutdown({ graceSeconds: 0 });
    await engine.close();
  }
}

/** POST JSON. */
export function post(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** Parse an SSE body into its `data:` payloads. */
export async function readSse(res: Response): Promise<string[]> {
  const text = await res.text();
  return text.split("\n\n").filter((b) => b.startsWith("data: ")).map((b) => b.slice(6));
}

/** Wait until `cond` holds, polling every 5 ms (fails after `ms`). */
export async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}
