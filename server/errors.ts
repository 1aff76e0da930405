/**
 * Errors in OpenAI's error body: `{"error": {"message", "type", "param", "code"}}`, each
 * with the HTTP status a client expects (400 bad field, 401 bad key, 404 unknown model or
 * route, 413 body too large, 429 queue full, 503 shutting down).
 *
 * @module
 */

import { PluginError, UsageError } from "../core/errors.ts";

/** An error the server answers with a status and an OpenAI error body. */
export class ApiError extends Error {
  /** HTTP status. */
  readonly status: number;
  /** OpenAI error type, e.g. "invalid_request_error". */
  readonly type: string;
  /** The request field the error is about, or null. */
  readonly param: string | null;
  /** A machine-readable code, or null. */
  readonly code: string | null;
  /** Extra response headers (e.g. `Retry-After`). */
  readonly headers: Record<string, string>;

  /** Build an error answered with `status`. */
  constructor(
    status: number,
    message: string,
    fields: {
      type?: string;
      param?: string | null;
      code?: string | null;
      headers?: Record<string, string>;
    } = {},
  ) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.type = fields.type ?? "invalid_request_error";
    this.param = fields.param ?? null;
    this.code = fields.code ?? null;
    this.headers = fields.headers ?? {};
  }

  /** The JSON body OpenAI clients parse. */
  body(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return {
      error: { message: this.message, type: this.type, param: this.param, code: this.code },
    };
  }
}

/** 400 for a bad field; `param` names it. */
export function badRequest(message: string, param: string | null = null): ApiError {
  return new ApiError(400, message, { param, code: param === null ? null : "invalid_value" });
}

/** 401 for a missing or wrong key. */
export function unauthorized(): ApiError {
  return new ApiError(
    401,
    "Missing or incorrect API key: send the header `Authorization: Bearer <key>`.",
    { code: "invalid_api_key" },
  );
}

/** 404 for a path the server does not serve. */
export function unknownRoute(method: string, path: string): ApiError {
  return new ApiError(404, `Unknown route: ${method} ${path}.`, { code: "unknown_url" });
}

/** 404 for a model name the server does not serve. */
export function unknownModel(name: string, served: readonly string[]): ApiError {
  return new ApiError(
    404,
    `The model \`${name}\` does not exist; this server serves: ${served.join(", ")}.`,
    { param: "model", code: "model_not_found" },
  );
}

/** 405 for a known path with the wrong method. */
export function methodNotAllowed(method: string, path: string, allowed: string[]): ApiError {
  return new ApiError(
    405,
    `Method ${method} is not allowed on ${path}; allowed: ${allowed.join(", ")}.`,
    { code: "method_not_allowed", headers: { Allow: allowed.join(", ") } },
  );
}

/** 413 for a body over the limit. */
export function tooLarge(limit: number): ApiError {
  return new ApiError(413, `Request body too large: at most ${limit} bytes are accepted.`, {
    code: "request_too_large",
  });
}

/** 429 when the waiting queue is full. */
export function queueFull(maxWaiting: number, retryAfterSeconds: number): ApiError {
  return new ApiError(
    429,
    `The server is busy: ${maxWaiting} requests are already waiting (--max-waiting). ` +
      `Retry after ${retryAfterSeconds} s.`,
    {
      type: "rate_limit_error",
      code: "queue_full",
      headers: { "Retry-After": String(retryAfterSeconds) },
    },
  );
}

/** 503 once shutdown has begun. */
export function shuttingDown(): ApiError {
  return new ApiError(503, "The server is shutting down and accepts no new requests.", {
    type: "server_error",
    code: "shutting_down",
    headers: { "Retry-After": "5", Connection: "close" },
  });
}

/**
 * Map anything thrown while handling a request to an {@link ApiError}: a `UsageError`
 * (bad input the engine refused) or `PluginError` from a swap is the caller's fault (400);
 * anything else is a server bug (500).
 */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof UsageError) return badRequest(e.message, e.param ?? null);
  if (e instanceof PluginError) return badRequest(e.message, null);
  const message = e instanceof Error ? e.message : String(e);
  return new ApiError(500, `Internal server error: ${message}`, {
    type: "server_error",
    code: "internal_error",
  });
}

/** The response for an error, JSON with its headers. */
export function errorResponse(e: ApiError): Response {
  return new Response(JSON.stringify(e.body()), {
    status: e.status,
    headers: { "Content-Type": "application/json", ...e.headers },
  });
}
