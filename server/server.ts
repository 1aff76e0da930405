/**
 * The server: `Deno.serve` around the {@link App}, the engine's wall-clock loop, and a
 * graceful shutdown (new requests get 503, streams in flight finish or, after the grace
 * period, end with finish reason "abort"; never silence).
 *
 * @module
 */

import { App, type AppOptions } from "./app.ts";
import { UsageError } from "../core/errors.ts";

/** Where and how to listen, plus everything the application needs. */
export interface ServerOptions extends AppOptions {
  /** Interface to bind (default 127.0.0.1: only this machine). */
  host?: string;
  /** Port (default 8000; 0 picks a free one). */
  port?: number;
  /** Seconds shutdown waits for requests in flight before aborting them (default 30). */
  shutdownGraceSeconds?: number;
  /** Drive the engine's serving loop (default true). */
  driveEngine?: boolean;
}

/** A running server. */
export interface BatonServer {
  /** The application (metrics, requests in flight). */
  readonly app: App;
  /** Bound host name. */
  readonly hostname: string;
  /** Bound port. */
  readonly port: number;
  /** Base URL, e.g. `http://127.0.0.1:8000`. */
  readonly url: string;
  /** Resolves once the server has shut down. */
  readonly finished: Promise<void>;
  /** Stop accepting, let requests in flight end (or abort them after the grace), close. */
  shutdown(options?: { graceSeconds?: number }): Promise<void>;
}

/** Start serving; resolves once the socket listens. */
export function startServer(options: ServerOptions): Promise<BatonServer> {
  const app = new App(options);
  const log = options.log ?? ((line: string) => console.error(line));
  const engine = options.engine;
  const drive = options.driveEngine ?? true;
  let loop: Promise<void> | undefined;
  if (drive) {
    loop = engine.run().catch((e) => {
      log(`engine loop failed: ${(e as Error)?.stack ?? e}`);
      app.failAll(`engine loop failed: ${(e as Error)?.message ?? e}`);
    });
  }
  return new Promise((resolve, reject) => {
    let server: Deno.HttpServer<Deno.NetAddr>;
    try {
      server = Deno.serve({
        hostname: options.host ?? "127.0.0.1",
        port: options.port ?? 8000,
        onListen: () => {},
        onError: (e) => {
          log(`request failed: ${(e as Error)?.stack ?? e}`);
          return new Response(
            JSON.stringify({
              error: {
                message: "Internal server error.",
                type: "server_error",
                param: null,
                code: "internal_error",
              },
            }),
            { status: 500, headers: { "Content-Type": "application/json" } },
          );
        },
      }, app.handle);
    } catch (e) {
      if (drive) engine.stop().catch(() => {});
      const where = `${options.host ?? "127.0.0.1"}:${options.port ?? 8000}`;
      if (e instanceof Deno.errors.AddrInUse) {
        reject(
          new UsageError(
            `cannot listen on ${where}: the port is in use; pick another with --port`,
            "--port",
          ),
        );
      } else {
        // Every other failure to listen comes from the address given (host lookup,
        // permissions, an address this machine does not have).
        reject(new UsageError(`cannot listen on ${where}: ${(e as Error).message}`, "--host"));
      }
      return;
    }
    let closing: Promise<void> | undefined;
    const addr = server.addr;
    const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
    resolve({
      app,
      hostname: addr.hostname,
      port: addr.port,
      url: `http://${host}:${addr.port}`,
      finished: server.finished,
      shutdown: (o = {}) => {
        closing ??= (async () => {
          app.drain();
          const grace = (o.graceSeconds ?? options.shutdownGraceSeconds ?? 30) * 1000;
          let timer: ReturnType<typeof setTimeout> | undefined;
          const expired = new Promise<void>((r) => timer = setTimeout(r, grace));
          await Promise.race([app.idle(), expired]);
          clearTimeout(timer);
          if (app.active.size > 0) {
            log(`shutdown: aborting ${app.active.size} requests still in flight`);
            app.abortAll();
          }
          await server.shutdown();
          if (drive) {
            await engine.stop();
            await loop;
          }
        })();
        return closing;
      },
    });
  });
}
