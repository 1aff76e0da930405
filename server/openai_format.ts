/**
 * OpenAI response shapes: the streamed chunks (`chat.completion.chunk`, `text_completion`)
 * and the whole-body responses, with `usage` and log-probabilities. Token chunks are
 * written from precomputed string pieces: at 1,000 streams this is the hot path.
 *
 * @module
 */

import type { Tokenizer } from "../core/model/types.ts";
import type { TokenLogprob } from "../core/types.ts";
import type { Choice, Generation } from "./generation.ts";
import type { SseStream } from "./sse.ts";

/** Usage block as OpenAI writes it. */
export interface UsageBody {
  /** Prompt tokens (each distinct prompt once). */
  prompt_tokens: number;
  /** Generated tokens over all choices. */
  completion_tokens: number;
  /** Their sum. */
  total_tokens: number;
  /** Prefix-cache hits. */
  prompt_tokens_details: { cached_tokens: number };
}

/** The usage of a generation. */
export function usageOf(gen: Generation, n: number): UsageBody {
  const u = gen.usage(n);
  return {
    prompt_tokens: u.prompt,
    completion_tokens: u.completion,
    total_tokens: u.prompt + u.completion,
    prompt_tokens_details: { cached_tokens: u.cached },
  };
}

/** Writes one generation as server-sent events. */
export class ChunkWriter {
  readonly #kind: "completion" | "chat";
  readonly #stream: SseStream;
  readonly #tokenizer: Tokenizer;
  readonly #head: string;
  readonly #modelJson: string;
  readonly #object: string;
  readonly #includeUsage: boolean;
  readonly #continuousUsage: boolean;
  readonly #n: number;
  readonly #gen: Generation;
  #pre: string[] = [];

  /** A writer for `gen`; `n` is choices per prompt. */
  constructor(
    gen: Generation,
    stream: SseStream,
    options: {
      kind: "completion" | "chat";
      model: string;
      tokenizer: Tokenizer;
      includeUsage: boolean;
      continuousUsage: boolean;
      n: number;
    },
  ) {
    this.#gen = gen;
    this.#kind = options.kind;
    this.#stream = stream;
    this.#tokenizer = options.tokenizer;
    this.#object = options.kind === "chat" ? "chat.completion.chunk" : "text_completion";
    this.#modelJson = JSON.stringify(options.model);
    this.#head = `{"id":${
      JSON.stringify(gen.id)
    },"object":"${this.#object}","created":${gen.created},"model":${this.#modelJson},"choices":[`;
    this.#includeUsage = options.includeUsage;
    this.#continuousUsage = options.continuousUsage && options.includeUsage;
    this.#n = options.n;
  }

  /** The opening chunks: the assistant role for chat (nothing for completions). */
  open(): void {
    for (const c of this.#gen.choices) {
      this.#pre[c.index] = this.#kind === "chat"
        ? `${this.#head}{"index":${c.index},"delta":{"content":`
        : `${this.#head}{"index":${c.index},"text":`;
    }
    if (this.#kind !== "chat") return;
    const out: string[] = [];
    for (const c of this.#gen.choices) {
      out.push(
        `${this.#head}{"index":${c.index},"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]${this.#usageTail()}}`,
      );
    }
    this.#stream.dataMany(out);
  }

  /** A token of choice `c`. Chunks without text are skipped unless they carry logprobs. */
  token(c: Choice, text: string, logprob: TokenLogprob | undefined): void {
    if (logprob === undefined) {
      if (text === "") return;
      const close = this.#kind === "chat" ? "}" : "";
      this.#stream.data(
        `${this.#pre[c.index]}${
          JSON.stringify(text)
        }${close},"logprobs":null,"finish_reason":null}]${this.#usageTail()}}`,
      );
      return;
    }
    const lp = this.#kind === "chat"
      ? { content: [chatLogprob(this.#tokenizer, c.tokens[c.tokens.length - 1], logprob)] }
      : completionLogprobs(this.#tokenizer, [c.tokens[c.tokens.length - 1]], [logprob], 0);
    const close = this.#kind === "chat" ? "}" : "";
    this.#stream.data(
      `${this.#pre[c.index]}${JSON.stringify(text)}${close},"logprobs":${
        JSON.stringify(lp)
      },"finish_reason":null}]${this.#usageTail()}}`,
    );
  }

  /** Choice `c` ended: its held-back tail (if any) and its finish reason. */
  finish(c: Choice, tail: string): void {
    if (c.finishReason === "error") return;
    const reason = JSON.stringify(c.finishReason ?? "stop");
    const body = this.#kind === "chat"
      ? `{"index":${c.index},"delta":${
        tail === "" ? "{}" : `{"content":${JSON.stringify(tail)}}`
      },"logprobs":null,"finish_reason":${reason}}`
      : `{"index":${c.index},"text":${
        JSON.stringify(tail)
      },"logprobs":null,"finish_reason":${reason}}`;
    this.#stream.data(`${this.#head}${body}]${this.#usageTail()}}`);
  }

  /** Every choice ended: an error event if one failed, the usage chunk, then `[DONE]`. */
  end(): void {
    const failed = this.#gen.choices.find((c) => c.finishReason === "error");
    if (failed !== undefined) {
      this.#stream.data(JSON.stringify({
        error: {
          message: `Generation failed: ${failed.error ?? "engine error"}`,
          type: "server_error",
          param: null,
          code: "generation_failed",
        },
      }));
    }
    if (this.#includeUsage) {
      this.#stream.data(
        `${this.#head}],"usage":${JSON.stringify(usageOf(this.#gen, this.#n))}}`,
      );
    }
    this.#stream.done();
  }

  #usageTail(): string {
    return this.#continuousUsage ? `,"usage":${JSON.stringify(usageOf(this.#gen, this.#n))}` : "";
  }
}

/** The whole-body response of a finished generation. */
export function responseBody(
  gen: Generation,
  options: {
    kind: "completion" | "chat";
    model: string;
    tokenizer: Tokenizer;
    n: number;
    logprobs: boolean;
  },
): Record<string, unknown> {
  const choices = gen.choices.map((c) => {
    const text = c.pieces.join("");
    const reason = c.finishReason ?? "stop";
    if (options.kind === "chat") {
      return {
        index: c.index,
        message: { role: "assistant", content: text },
        logprobs: options.logprobs
          ? {
            content: c.logprobs.map((lp, i) => chatLogprob(options.tokenizer, c.tokens[i], lp)),
          }
          : null,
        finish_reason: reason,
      };
    }
    return {
      index: c.index,
      text,
      logprobs: options.logprobs
        ? completionLogprobs(options.tokenizer, c.tokens, c.logprobs, 0)
        : null,
      finish_reason: reason,
    };
  });
  return {
    id: gen.id,
    object: options.kind === "chat" ? "chat.completion" : "text_completion",
    created: gen.created,
    model: options.model,
    choices,
    usage: usageOf(gen, options.n),
  };
}

function tokenText(tokenizer: Tokenizer, id: number): string {
  return tokenizer.decode([id]);
}

function chatLogprob(tokenizer: Tokenizer, token: number, lp: TokenLogprob) {
  const t = tokenText(tokenizer, token);
  return {
    token: t,
    logprob: lp.logprob,
    bytes: [...new TextEncoder().encode(t)],
    top_logprobs: lp.top.map((a) => {
      const s = tokenText(tokenizer, a.token);
      return { token: s, logprob: a.logprob, bytes: [...new TextEncoder().encode(s)] };
    }),
  };
}

function completionLogprobs(
  tokenizer: Tokenizer,
  tokens: readonly number[],
  lps: readonly TokenLogprob[],
  offset: number,
) {
  const strs: string[] = [];
  const textOffset: number[] = [];
  let at = offset;
  for (const t of tokens.slice(0, lps.length)) {
    const s = tokenText(tokenizer, t);
    strs.push(s);
    textOffset.push(at);
    at += s.length;
  }
  return {
    tokens: strs,
    token_logprobs: lps.map((l) => l.logprob),
    top_logprobs: lps.map((l) => {
      const o: Record<string, number> = {};
      for (const a of l.top) o[tokenText(tokenizer, a.token)] = a.logprob;
      return o;
    }),
    text_offset: textOffset,
  };
}
