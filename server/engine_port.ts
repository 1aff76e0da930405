/**
 * What the server needs from an engine. The server is written against this shape, so it
 * runs on the real `Engine` (any executor, including `sim` on the wall clock) and, in
 * tests, on anything that behaves like one.
 *
 * @module
 */

import type { RequestEvent, RequestInput, RequestView } from "../core/types.ts";
import type { Tokenizer } from "../core/model/types.ts";
import type { EngineStats } from "../core/engine.ts";

/** The engine operations the server uses. */
export interface ServingEngine {
  /** Queue a request; throws `UsageError` on input the engine refuses. */
  add(input: RequestInput, listener: (ev: RequestEvent) => void): string;
  /** Abort a request: frees its KV at once and emits finish "abort". */
  abort(id: string): boolean;
  /** The serving loop on the wall clock; resolves after {@link stop}. */
  run(): Promise<void>;
  /** Ask the serving loop to end after the current step. */
  stop(): Promise<void>;
  /** Swap a slot's plugin at the next iteration boundary (validates first). */
  swap(slot: string, name: string, options?: Record<string, unknown>): Promise<void>;
  /** Counters and gauges now. */
  readonly stats: EngineStats;
  /** Requests waiting (read for `--max-waiting` on every request, so kept cheap). */
  readonly waiting: readonly RequestView[];
  /** The plugin and options in each slot. */
  plugins(): { slot: string; name: string; options: unknown }[];
}

/** The served model as the server needs it. */
export interface ServedModel {
  /** Name in `/v1/models` (and the first accepted `model` value). */
  readonly name: string;
  /** Tokenizer for chat templates, prompt lengths and log-probability tokens. */
  readonly tokenizer: Tokenizer;
  /** Longest prompt plus output accepted. */
  readonly maxModelLen: number;
  /** Beginning-of-sequence token id, or -1 (prepended to prompts, as the engine does). */
  readonly bosTokenId: number;
}

/** One slot's active plugin, as the admin API shows it. */
export interface ActivePlugin {
  /** Plugin name. */
  name: string;
  /** Its options, defaults filled in. */
  options: Record<string, unknown>;
  /** A swap validated and waiting for the next iteration boundary. */
  pending?: { name: string; options: Record<string, unknown> };
}
