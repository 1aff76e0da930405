/**
 * OpenAI request bodies for `/v1/completions` and `/v1/chat/completions`, validated with
 * zod before the engine sees them, and turned into one normalized {@link GenerationRequest}.
 * A bad field is a 400 that names the field and what is allowed. Unknown fields are
 * ignored, as vLLM does, so clients that send extra parameters keep working.
 *
 * @module
 */

import { z } from "zod";
import type { ChatMessage } from "../core/model/types.ts";
import type { TurnInfo } from "../core/types.ts";
import { badRequest } from "./errors.ts";

/** Most choices per request (`n`). */
export const MAX_N = 16;
/** Most top log-probabilities per token. */
export const MAX_TOP_LOGPROBS = 20;
/** Most stop strings. */
export const MAX_STOP = 16;

const int = (min: number, max: number) =>
  z.number({ error: `expected an integer from ${min} to ${max}` }).int({
    error: `expected an integer from ${min} to ${max}`,
  }).min(min, { error: `expected an integer from ${min} to ${max}` }).max(max, {
    error: `expected an integer from ${min} to ${max}`,
  });

const stopField = z.union([
  z.string(),
  z.array(z.string()).max(MAX_STOP),
], { error: `expected a string or an array of at most ${MAX_STOP} strings` }).nullish();

const penalty = (name: string) =>
  z.number({ error: "expected 0 (penalties are not supported)" }).refine((v) => v === 0, {
    error: `${name} is not supported; only 0 is allowed`,
  }).nullish();

const common = {
  model: z.string({ error: "expected a string" }).nullish(),
  max_tokens: int(1, 2 ** 31 - 1).nullish(),
  max_completion_tokens: int(1, 2 ** 31 - 1).nullish(),
  temperature: z.number({ error: "expected a number from 0 to 2" }).min(0, {
    error: "expected a number from 0 to 2",
  }).max(2, { error: "expected a number from 0 to 2" }).nullish(),
  top_p: z.number({ error: "expected a number in (0, 1]" }).gt(0, {
    error: "expected a number in (0, 1]",
  }).max(1, { error: "expected a number in (0, 1]" }).nullish(),
  top_k: int(-1, 2 ** 31 - 1).nullish(),
  seed: int(-(2 ** 53) + 1, 2 ** 53 - 1).nullish(),
  stop: stopField,
  stop_token_ids: z.array(int(0, 2 ** 31 - 1), { error: "expected an array of token ids" })
    .max(64).nullish(),
  stream: z.boolean({ error: "expected true or false" }).nullish(),
  stream_options: z.object({
    include_usage: z.boolean({ error: "expected true or false" }).nullish(),
    continuous_usage_stats: z.boolean({ error: "expected true or false" }).nullish(),
  }, { error: "expected an object" }).nullish(),
  n: int(1, MAX_N).nullish(),
  best_of: int(1, MAX_N).nullish(),
  user: z.string({ error: "expected a string" }).nullish(),
  // Multi-turn agents (Continuum's request fields): the program, its last turn, the tool.
  program_id: z.string({ error: "expected a string" }).min(1, {
    error: "expected a non-empty string",
  })
    .nullish(),
  is_last_step: z.boolean({ error: "expected true or false" }).nullish(),
  tool_name: z.string({ error: "expected a string" }).min(1, {
    error: "expected a non-empty string",
  })
    .nullish(),
  ignore_eos: z.boolean({ error: "expected true or false" }).nullish(),
  priority: int(-(2 ** 31), 2 ** 31 - 1).nullish(),
  presence_penalty: penalty("presence_penalty"),
  frequency_penalty: penalty("frequency_penalty"),
};

const tokenIds = z.array(int(0, 2 ** 31 - 1)).min(1);

/** Body of `POST /v1/completions`. */
export const CompletionBody: z.ZodType<Record<string, unknown>> = z.object({
  ...common,
  prompt: z.union([
    z.string(),
    z.array(z.string()).min(1).max(MAX_N),
    tokenIds,
    z.array(tokenIds).min(1).max(MAX_N),
  ], {
    error: "expected a string, an array of strings, an array of token ids, " +
      `or an array of token-id arrays (at most ${MAX_N} prompts)`,
  }),
  logprobs: int(0, MAX_TOP_LOGPROBS).nullish(),
  echo: z.literal(false, { error: "echo is not supported; only false is allowed" }).nullish(),
  suffix: z.null({ error: "suffix is not supported" }).optional(),
}, { error: "expected a JSON object" }) as unknown as z.ZodType<Record<string, unknown>>;

const textPart = z.object({
  type: z.literal("text", { error: 'only "text" content parts are supported' }),
  text: z.string({ error: "expected a string" }),
});

const message = z.object({
  role: z.enum(["system", "developer", "user", "assistant", "tool"], {
    error: 'expected one of "system", "developer", "user", "assistant", "tool"',
  }),
  content: z.union([z.string(), z.array(textPart)], {
    error: "expected a string or an array of text parts",
  }).nullish(),
  name: z.string().nullish(),
}, { error: "expected a message object with role and content" });

/** Body of `POST /v1/chat/completions`. */
export const ChatBody: z.ZodType<Record<string, unknown>> = z.object({
  ...common,
  messages: z.array(message, { error: "expected an array of messages" }).min(1, {
    error: "expected at least one message",
  }),
  logprobs: z.boolean({ error: "expected true or false" }).nullish(),
  top_logprobs: int(0, MAX_TOP_LOGPROBS).nullish(),
}, { error: "expected a JSON object" }) as unknown as z.ZodType<Record<string, unknown>>;

/** One prompt, as text or token ids. */
export type PromptInput = { text: string } | { tokens: number[] };

/** A validated request, the same shape for both endpoints. */
export interface GenerationRequest {
  /** Which endpoint. */
  kind: "completion" | "chat";
  /** Requested model name, if given. */
  model: string | undefined;
  /** Prompts (completions may carry several; chat has the rendered conversation). */
  prompts: PromptInput[];
  /** The conversation (chat only). */
  messages: ChatMessage[] | undefined;
  /** Cap on generated tokens, undefined for "up to the context length". */
  maxTokens: number | undefined;
  /** Which field set the cap (for error messages). */
  maxTokensField: "max_tokens" | "max_completion_tokens";
  /** 0 is greedy. */
  temperature: number;
  /** 1 turns it off. */
  topP: number;
  /** 0 turns it off. */
  topK: number;
  /** Per-request seed, if given. */
  seed: number | undefined;
  /** Stop strings. */
  stop: string[];
  /** Extra stop token ids. */
  stopTokenIds: number[];
  /** Stream as server-sent events. */
  stream: boolean;
  /** Send a last chunk with usage when streaming. */
  includeUsage: boolean;
  /** Send usage in every chunk. */
  continuousUsage: boolean;
  /** Top alternatives per token; -1 = no log-probabilities. */
  logprobs: number;
  /** Choices per prompt. */
  n: number;
  /** Program id for program-aware policies: `program_id`, else the caller's `user`. */
  programId: string | undefined;
  /** What a multi-turn agent said of this turn (`is_last_step`, `tool_name`). */
  turn: TurnInfo | undefined;
  /** Keep going past end-of-sequence. */
  ignoreEos: boolean;
  /** Scheduling priority. */
  priority: number;
}

/** Validate a parsed body; throws a 400 {@link ApiError} naming the first bad field. */
export function parseGenerationRequest(
  kind: "completion" | "chat",
  body: unknown,
): GenerationRequest {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw badRequest("The request body must be a JSON object.");
  }
  const schema = kind === "chat" ? ChatBody : CompletionBody;
  const r = schema.safeParse(body);
  if (!r.success) throw fromIssue(r.error.issues[0], body as Record<string, unknown>);
  // deno-lint-ignore no-explicit-any
  const b = r.data as any;
  const n = b.n ?? 1;
  if (b.best_of != null && b.best_of !== n) {
    throw badRequest("best_of must equal n (beam search is not supported).", "best_of");
  }
  let prompts: PromptInput[] = [];
  let messages: ChatMessage[] | undefined;
  let logprobs = -1;
  if (kind === "completion") {
    const p = b.prompt;
    if (typeof p === "string") prompts = [{ text: p }];
    else if (typeof p[0] === "string") prompts = (p as string[]).map((text) => ({ text }));
    else if (typeof p[0] === "number") prompts = [{ tokens: p as number[] }];
    else prompts = (p as number[][]).map((tokens) => ({ tokens }));
    if (prompts.length * n > MAX_N) {
      throw badRequest(
        `prompts times n is ${prompts.length * n}; at most ${MAX_N} choices per request.`,
        "n",
      );
    }
    if (b.logprobs != null) logprobs = b.logprobs;
  } else {
    messages = (b.messages as { role: string; content?: unknown }[]).map((m) => ({
      role: m.role,
      content: typeof m.content === "string"
        ? m.content
        : Array.isArray(m.content)
        ? (m.content as { text: string }[]).map((p) => p.text).join("")
        : "",
    }));
    if (b.logprobs === true) logprobs = b.top_logprobs ?? 0;
    else if (b.top_logprobs != null && b.top_logprobs > 0) {
      throw badRequest("top_logprobs needs logprobs set to true.", "top_logprobs");
    }
  }
  const stop = b.stop == null ? [] : typeof b.stop === "string" ? [b.stop] : b.stop;
  if (stop.some((s: string) => s.length === 0)) {
    throw badRequest("stop strings must not be empty.", "stop");
  }
  const maxTokensField = b.max_completion_tokens != null ? "max_completion_tokens" : "max_tokens";
  const topK = b.top_k ?? 0;
  return {
    kind,
    model: b.model ?? undefined,
    prompts,
    messages,
    maxTokens: b.max_completion_tokens ?? b.max_tokens ?? (kind === "completion" ? 16 : undefined),
    maxTokensField,
    temperature: b.temperature ?? 1,
    topP: b.top_p ?? 1,
    topK: topK < 0 ? 0 : topK,
    seed: b.seed ?? undefined,
    stop,
    stopTokenIds: b.stop_token_ids ?? [],
    stream: b.stream ?? false,
    includeUsage: b.stream_options?.include_usage ?? false,
    continuousUsage: b.stream_options?.continuous_usage_stats ?? false,
    logprobs,
    n,
    programId: b.program_id ?? b.user ?? undefined,
    turn: b.is_last_step != null || b.tool_name != null
      ? {
        ...(b.is_last_step != null ? { last: b.is_last_step } : {}),
        ...(b.tool_name != null ? { tool: b.tool_name } : {}),
      }
      : undefined,
    ignoreEos: b.ignore_eos ?? false,
    priority: b.priority ?? 0,
  };
}

function fromIssue(issue: z.core.$ZodIssue, body: Record<string, unknown>) {
  const path = issue.path.map((p) => typeof p === "number" ? `[${p}]` : `.${String(p)}`)
    .join("").replace(/^\./, "");
  if (path === "") return badRequest(`Invalid request body: ${issue.message}.`);
  let got: unknown = body;
  for (const p of issue.path) {
    got = got !== null && typeof got === "object"
      ? (got as Record<PropertyKey, unknown>)[p as PropertyKey]
      : undefined;
  }
  const shown = got === undefined ? "nothing" : truncate(JSON.stringify(got) ?? String(got));
  return badRequest(`Invalid value for '${path}': ${issue.message}; got ${shown}.`, path);
}

function truncate(s: string): string {
  return s.length > 60 ? s.slice(0, 57) + "..." : s;
}
