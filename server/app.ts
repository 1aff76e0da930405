/**
 * The HTTP application: routes, auth, limits and the generation endpoints, as one
 * `(Request) => Promise<Response>` handler over an engine. It knows nothing of sockets or
 * signals (server.ts does), so tests can drive it with any engine.
 *
 * Routes: `POST /v1/completions`, `POST /v1/chat/completions`, `GET /v1/models`,
 * `GET /health`, `GET /metrics`, `GET /admin/plugins`, `GET|PUT /admin/plugins/{slot}`.
 *
 * @module
 */

import type { AdminBackend } from "./admin.ts";
import { parseSwapBody } from "./admin.ts";
import type { ServedModel, ServingEngine } from "./engine_port.ts";
import {
  ApiError,
  errorResponse,
  methodNotAllowed,
  queueFull,
  shuttingDown,
  toApiError,
  unauthorized,
  unknownModel,
  unknownRoute,
} from "./errors.ts";
import { Generation, newRequestId, preparePrompts } from "./generation.ts";
import { hasBearer, json, readJsonBody } from "./http.ts";
import { type EngineGauges, ServerMetrics } from "./metrics.ts";
import { parseGenerationRequest } from "./openai_schema.ts";
import { ChunkWriter, responseBody } from "./openai_format.ts";
import { SSE_HEADERS, SseStream } from "./sse.ts";

/** Default body limit: 4 MiB. */
export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;

/** How the application behaves. */
export interface AppOptions {
  /** The engine serving the model (its loop is driven by server.ts). */
  engine: ServingEngine;
  /** The served model. */
  model: ServedModel;
  /** Extra names accepted in `model` (the first listed in `/v1/models` is `model.name`). */
  servedModelNames?: string[];
  /** Bearer key guarding `/v1` (open when absent). */
  apiKey?: string;
  /** Bearer key guarding `/admin` (admin is off when absent). */
  adminKey?: string;
  /** Most waiting requests before new ones get 429 (unlimited when absent). */
  maxWaiting?: number;
  /** Largest request body in bytes (default 4 MiB). */
  maxBodyBytes?: number;
  /** Plugin listing and swaps for `/admin` (admin answers 404 without it). */
  admin?: AdminBackend;
  /** Log one line. */
  log?: (line: string) => void;
}

/** The application: a request handler plus what shutdown needs. */
export class App {
  /** Prometheus metrics. */
  readonly metrics: ServerMetrics;
  /** Generations in flight. */
  readonly active: Set<Generation> = new Set();
  readonly #o: AppOptions;
  readonly #names: string[];
  readonly #maxBody: number;
  #draining = false;
  #idleWaiters: (() => void)[] = [];

  /** An application over `options.engine`. */
  constructor(options: AppOptions) {
    this.#o = options;
    this.#names = [options.model.name, ...(options.servedModelNames ?? [])];
    this.#maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.metrics = new ServerMetrics(this.#names[0]);
  }

  /** Whether shutdown has begun (new work gets 503). */
  get draining(): boolean {
    return this.#draining;
  }

  /** Refuse new work from now on. */
  drain(): void {
    this.#draining = true;
  }

  /** Resolves when no generation is in flight. */
  idle(): Promise<void> {
    if (this.active.size === 0) return Promise.resolve();
    return new Promise((r) => this.#idleWaiters.push(r));
  }

  /** Abort every generation in flight (their streams end with finish reason "abort"). */
  abortAll(): void {
    for (const g of [...this.active]) g.abort();
  }

  /** End every generation in flight with an error (the engine loop failed). */
  failAll(message: string): void {
    for (const g of [...this.active]) g.fail(message);
  }

  /** Handle one HTTP request. Never throws. */
  handle = async (req: Request): Promise<Response> => {
    let res: Response;
    try {
      res = await this.#route(req);
    } catch (e) {
      const err = toApiError(e);
      if (err.status >= 500) {
        this.#o.log?.(
          `error on ${req.method} ${new URL(req.url).pathname}: ${(e as Error)?.stack ?? e}`,
        );
      }
      res = errorResponse(err);
    }
    this.metrics.response(res.status);
    return res;
  };

  async #route(req: Request): Promise<Response> {
    const path = new URL(req.url).pathname.replace(/\/+$/, "") || "/";
    const method = req.method;
    if (path === "/health") {
      only(method, path, ["GET", "HEAD"]);
      if (this.#draining) throw shuttingDown();
      return new Response(null, { status: 200 });
    }
    if (path === "/metrics") {
      only(method, path, ["GET"]);
      return new Response(this.metrics.render(this.#gauges()), {
        headers: { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" },
      });
    }
    if (path === "/v1" || path.startsWith("/v1/")) {
      if (this.#o.apiKey !== undefined && !hasBearer(req, this.#o.apiKey)) throw unauthorized();
      if (path === "/v1/models") {
        only(method, path, ["GET"]);
        return json({ object: "list", data: this.#names.map((n) => this.#modelCard(n)) });
      }
      if (path.startsWith("/v1/models/")) {
        only(method, path, ["GET"]);
        const name = decodeURIComponent(path.slice("/v1/models/".length));
        if (!this.#names.includes(name)) throw unknownModel(name, this.#names);
        return json(this.#modelCard(name));
      }
      if (path === "/v1/completions" || path === "/v1/chat/completions") {
        only(method, path, ["POST"]);
        return await this.#generate(req, path === "/v1/chat/completions" ? "chat" : "completion");
      }
      throw unknownRoute(method, path);
    }
    if (path === "/admin" || path.startsWith("/admin/")) {
      const admin = this.#o.admin;
      if (this.#o.adminKey === undefined || admin === undefined) throw unknownRoute(method, path);
      if (!hasBearer(req, this.#o.adminKey)) throw unauthorized();
      if (path === "/admin/plugins") {
        only(method, path, ["GET"]);
        return json(admin.list());
      }
      if (path === "/admin/plugins/available") {
        only(method, path, ["GET"]);
        return json(admin.available());
      }
      const m = /^\/admin\/plugins\/([^/]+)$/.exec(path);
      if (m !== null) {
        const slot = decodeURIComponent(m[1]);
        if (!admin.hasSlot(slot)) {
          throw new ApiError(
            404,
            `Unknown slot "${slot}"; slots: ${Object.keys(admin.available()).join(", ")}.`,
            {
              param: "slot",
              code: "unknown_slot",
            },
          );
        }
        only(method, path, ["GET", "PUT"]);
        if (method === "GET") {
          return json({
            slot,
            active: admin.list()[slot] ?? null,
            available: admin.available()[slot],
          });
        }
        if (this.#draining) throw shuttingDown();
        const body = parseSwapBody(await readJsonBody(req, this.#maxBody));
        const active = await admin.swap(slot, body.name, body.options);
        this.#o.log?.(`swapped ${slot} to ${body.name} ${JSON.stringify(active.options)}`);
        return json({ slot, ...active, appliesAt: "next iteration" });
      }
      throw unknownRoute(method, path);
    }
    throw unknownRoute(method, path);
  }

  #modelCard(name: string) {
    return {
      id: name,
      object: "model",
      created: 0,
      owned_by: "baton",
      root: this.#names[0],
      parent: null,
      max_model_len: this.#o.model.maxModelLen,
      vocab_size: this.#o.model.tokenizer.vocabSize,
    };
  }

  async #generate(req: Request, kind: "completion" | "chat"): Promise<Response> {
    if (this.#draining) throw shuttingDown();
    const arrivedAt = performance.now();
    const body = await readJsonBody(req, this.#maxBody);
    const greq = parseGenerationRequest(kind, body);
    if (greq.model !== undefined && !this.#names.includes(greq.model)) {
      throw unknownModel(greq.model, this.#names);
    }
    const prompts = preparePrompts(greq, this.#o.model);
    const engine = this.#o.engine;
    const max = this.#o.maxWaiting;
    if (max !== undefined && engine.waiting.length + prompts.length * greq.n > max) {
      this.metrics.rejected++;
      throw queueFull(max, 1);
    }
    if (this.#draining) throw shuttingDown();
    const modelName = greq.model ?? this.#names[0];
    const gen = new Generation(
      newRequestId(kind === "chat" ? "chatcmpl" : "cmpl"),
      engine,
      this.metrics,
      {
        keepText: !greq.stream,
        arrivedAt,
      },
    );
    const track = () => {
      this.active.add(gen);
    };
    const untrack = () => {
      this.active.delete(gen);
      if (this.active.size === 0) {
        const w = this.#idleWaiters;
        this.#idleWaiters = [];
        for (const f of w) f();
      }
    };

    if (greq.stream) {
      const stream = new SseStream(() => {
        // Client went away mid-stream: free its KV now.
        gen.abort();
      });
      const writer = new ChunkWriter(gen, stream, {
        kind,
        model: modelName,
        tokenizer: this.#o.model.tokenizer,
        includeUsage: greq.includeUsage,
        continuousUsage: greq.continuousUsage,
        n: greq.n,
      });
      gen.start(greq, prompts, {
        token: (c, text, lp) => writer.token(c, text, lp),
        finish: (c, tail) => writer.finish(c, tail),
        done: () => {
          writer.end();
          untrack();
        },
      });
      if (!gen.finished) track();
      writer.open();
      return new Response(stream.body, { headers: SSE_HEADERS });
    }

    const done = new Promise<void>((resolve) => {
      gen.start(greq, prompts, {
        token: () => {},
        finish: () => {},
        done: () => {
          untrack();
          resolve();
        },
      });
    });
    if (!gen.finished) track();
    const onGone = () => gen.abort();
    req.signal.addEventListener("abort", onGone, { once: true });
    try {
      await done;
    } finally {
      req.signal.removeEventListener("abort", onGone);
    }
    const failed = gen.choices.find((c) => c.finishReason === "error");
    if (failed !== undefined) {
      throw new ApiError(500, `Generation failed: ${failed.error ?? "engine error"}`, {
        type: "server_error",
        code: "generation_failed",
      });
    }
    return json(responseBody(gen, {
      kind,
      model: modelName,
      tokenizer: this.#o.model.tokenizer,
      n: greq.n,
      logprobs: greq.logprobs >= 0,
    }));
  }

  #gauges(): EngineGauges {
    const s = this.#o.engine.stats;
    const names = new Map<string, string>();
    for (const p of this.#o.engine.plugins()) names.set(p.slot, p.name);
    return {
      running: s.numRunning,
      waiting: s.numWaiting,
      kvUsage: s.kvUsage,
      preemptions: s.preemptions,
      promptTokens: s.promptTokens,
      generationTokens: s.generationTokens,
      evictions: s.evictions,
      recomputedTokens: s.recomputedTokens,
      swapOuts: s.swapOuts,
      swapBlocksUsed: s.swapBlocksUsed,
      prefixHitTokens: s.prefixHitTokens,
      hostHitTokens: s.hostHitTokens,
      draftTokens: s.draftTokens,
      acceptedDraftTokens: s.acceptedDraftTokens,
      decisionSeconds: Object.entries(s.decisionTime).map(([slot, d]) => ({
        slot,
        plugin: names.get(slot) ?? "unknown",
        seconds: d.total,
      })),
    };
  }
}

function only(method: string, path: string, allowed: string[]): void {
  if (!allowed.includes(method)) throw methodNotAllowed(method, path, allowed);
}
