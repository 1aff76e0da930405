/**
 * Turning what a caller submits into an engine request: the prompt encoded or checked,
 * sampling defaults filled in, every field checked with an error that names it and says
 * what is allowed. Nothing is queued when this throws.
 *
 * @module
 */

import { UsageError } from "./errors.ts";
import { Request, type RequestListener } from "./request.ts";
import type { RequestInput, SamplingParams, TokenIds } from "./types.ts";
import type { Model } from "./model/types.ts";

/** Engine defaults for sampling fields a request leaves out. */
export const DEFAULT_SAMPLING: Omit<SamplingParams, "seed"> = {
  temperature: 1,
  topK: 0,
  topP: 1,
  maxTokens: 16,
  stopTokenIds: [],
  stop: [],
  ignoreEos: false,
  logprobs: -1,
};

/** What validation needs to know about the engine. */
export interface RequestContext {
  /** The model (tokenizer, vocabulary). */
  model: Model;
  /** Longest context. */
  maxModelLen: number;
  /** Tokens the KV pool holds. */
  poolTokens: number;
  /** Engine seed (a request without a seed gets one derived from it). */
  seed: number;
  /** This request's submission number (default id and seed). */
  serial: number;
  /** Arrival time when the input gives none. */
  now: number;
  /** Whether an id is in flight. */
  inFlight(id: string): boolean;
}

/** Check `input` and build the request; throws {@link UsageError} naming the bad field. */
export function validateRequest(
  input: RequestInput,
  listener: RequestListener,
  ctx: RequestContext,
): Request {
  if (typeof listener !== "function") throw new UsageError("a request needs a listener function");
  const cfg = ctx.model.config;
  let tokens: TokenIds;
  if (input.promptTokens !== undefined) {
    if (!Array.isArray(input.promptTokens) && !(input.promptTokens instanceof Int32Array)) {
      throw new UsageError("promptTokens must be an array or Int32Array of token ids", "prompt");
    }
    const given = input.promptTokens, vocab = cfg.vocabSize;
    for (let i = 0; i < given.length; i++) {
      const t = given[i];
      // (t | 0) === t: an integer in int32 range, and never a string or NaN.
      if ((t | 0) !== t || t < 0 || t >= vocab) {
        throw new UsageError(
          `prompt token ${t} is not an integer from 0 to ${cfg.vocabSize - 1}`,
          "prompt",
        );
      }
    }
    tokens = input.promptTokens; // kept by reference: callers must not change it afterwards
  } else if (typeof input.prompt === "string") {
    if (input.prompt.length === 0) throw new UsageError("the prompt is empty", "prompt");
    tokens = ctx.model.tokenizer.encode(input.prompt, { addBos: true });
  } else {
    throw new UsageError(
      "a request needs a prompt: text in `prompt` or ids in `promptTokens`",
      "prompt",
    );
  }
  if (tokens.length === 0) throw new UsageError("the prompt is empty", "prompt");
  const maxLen = ctx.maxModelLen;
  if (tokens.length >= maxLen) {
    throw new UsageError(
      `the prompt has ${tokens.length} tokens; this model accepts fewer than ${maxLen}`,
      "prompt",
    );
  }
  const poolTokens = ctx.poolTokens;
  if (tokens.length + 1 > poolTokens) {
    throw new UsageError(
      `the prompt has ${tokens.length} tokens; the KV cache holds ${poolTokens}`,
      "prompt",
    );
  }
  const s = { ...DEFAULT_SAMPLING, ...stripUndefined(input.sampling ?? {}) } as SamplingParams;
  const n = ctx.serial;
  s.seed ??= mixSeed(ctx.seed, n);
  checkNumber("temperature", s.temperature, 0, 100);
  checkInt("top_k", s.topK, 0, cfg.vocabSize);
  if (!(s.topP > 0 && s.topP <= 1)) {
    throw new UsageError(`top_p must be in (0, 1], got ${s.topP}`, "top_p");
  }
  checkInt("max_tokens", s.maxTokens, 1, 1 << 30);
  checkInt("seed", s.seed, -(2 ** 53), 2 ** 53);
  checkInt("logprobs", s.logprobs, -1, 20);
  if (!Array.isArray(s.stop) || s.stop.some((x) => typeof x !== "string" || x.length === 0)) {
    throw new UsageError("stop must be a list of non-empty strings", "stop");
  }
  if (!Array.isArray(s.stopTokenIds) || s.stopTokenIds.some((t) => !Number.isInteger(t))) {
    throw new UsageError("stop_token_ids must be a list of token ids", "stop_token_ids");
  }
  const id = input.id ?? `req-${n}`;
  if (typeof id !== "string" || id.length === 0) {
    throw new UsageError("a request id must be a non-empty string", "id");
  }
  if (ctx.inFlight(id)) throw new UsageError(`request id ${id} is already in flight`, "id");
  if (
    input.hidden !== undefined &&
    !(Number.isInteger(input.hidden.outputLength) && input.hidden.outputLength >= 1)
  ) {
    throw new UsageError("hidden.outputLength must be an integer of at least 1", "hidden");
  }
  if (input.stream !== undefined && typeof input.stream !== "boolean") {
    throw new UsageError(`stream must be true or false, got ${input.stream}`, "stream");
  }
  if (input.programId !== undefined && typeof input.programId !== "string") {
    throw new UsageError(`programId must be a string, got ${typeof input.programId}`, "programId");
  }
  const turn = input.turn;
  if (turn !== undefined) {
    if (typeof turn !== "object" || turn === null) {
      throw new UsageError("turn must be an object { last?: boolean, tool?: string }", "turn");
    }
    if (turn.last !== undefined && typeof turn.last !== "boolean") {
      throw new UsageError(`turn.last must be true or false, got ${turn.last}`, "turn");
    }
    if (turn.tool !== undefined && (typeof turn.tool !== "string" || turn.tool.length === 0)) {
      throw new UsageError("turn.tool must be a non-empty string", "turn");
    }
  }
  const priority = input.priority ?? 0;
  checkNumber("priority", priority, -(2 ** 53), 2 ** 53);
  return new Request({
    id,
    arrivalTime: input.arrivalTime ?? ctx.now,
    priority,
    programId: input.programId,
    turn: turn && { ...turn },
    promptTokens: tokens,
    sampling: s,
    hidden: input.hidden,
    listener,
    stream: input.stream,
  });
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) {
    if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  }
  return out;
}

function checkNumber(name: string, v: number, lo: number, hi: number): void {
  if (typeof v !== "number" || !Number.isFinite(v) || v < lo || v > hi) {
    throw new UsageError(`${name} must be a number from ${lo} to ${hi}, got ${v}`, name);
  }
}

function checkInt(name: string, v: number, lo: number, hi: number): void {
  if (!Number.isInteger(v) || v < lo || v > hi) {
    throw new UsageError(`${name} must be an integer from ${lo} to ${hi}, got ${v}`, name);
  }
}

/** A request's default seed from the engine seed and its submission number. */
function mixSeed(seed: number, n: number): number {
  let h = Math.imul((seed | 0) ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(n + 1, 0xc2b2ae35);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  return (h ^ (h >>> 12)) >>> 0;
}
