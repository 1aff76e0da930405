/**
 * The OpenAI-compatible server: build one around an {@link Engine} with
 * {@link serveEngine}, or around any engine-like object with {@link startServer}.
 *
 * @module
 */

import type { Engine } from "../core/engine.ts";
import { registryAdmin } from "./admin.ts";
import { type BatonServer, type ServerOptions, startServer } from "./server.ts";

export { App, type AppOptions, DEFAULT_MAX_BODY_BYTES } from "./app.ts";
export { type AdminBackend, registryAdmin } from "./admin.ts";
export type { ActivePlugin, ServedModel, ServingEngine } from "./engine_port.ts";
export { ApiError } from "./errors.ts";
export { type BatonServer, type ServerOptions, startServer } from "./server.ts";

/** Server options besides the engine, model and admin backend, which come from the engine. */
export type EngineServerOptions = Omit<ServerOptions, "engine" | "model" | "admin">;

/** Serve `engine`'s model over HTTP, with the admin API over the engine's registry. */
export function serveEngine(
  engine: Engine,
  options: EngineServerOptions = {},
): Promise<BatonServer> {
  const model = engine.model;
  return startServer({
    ...options,
    engine,
    model: {
      name: model.name,
      tokenizer: model.tokenizer,
      maxModelLen: engine.limits.maxModelLen,
      bosTokenId: model.config.bosTokenId,
    },
    admin: registryAdmin(engine, engine.registry),
  });
}
export { type EngineGauges, Histogram, ServerMetrics } from "./metrics.ts";
export { type Choice, Generation, type GenerationSink, type PreparedPrompt } from "./generation.ts";
export type { GenerationRequest, PromptInput } from "./openai_schema.ts";
